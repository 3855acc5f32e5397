/**
 * Running the Ory servers we build from Go modules (Hydra, Kratos) as child
 * processes: one command to completion, or a long-lived server with its
 * output captured, a watchdog that stops it if we die, and a stop().
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Waits for EOF on stdin (our end closes when we die), then TERM, then KILL after 10 s, to pid $1. */
const WATCHDOG = 'read x; kill -TERM "$1" 2>/dev/null; for i in $(seq 50); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.2; done; kill -KILL "$1"';

export interface ProcessOptions {
  /** Shown in errors ("Hydra", "Kratos"). */
  name: string;
  env: Record<string, string>;
  cwd?: string;
  /** Receives each line the process prints (stdout and stderr). */
  log: (line: string) => void;
}

export interface ServiceProcess {
  /** How it ended ("exit code 1", "signal SIGTERM"), or undefined while it runs. */
  exited(): string | undefined;
  /** Its last 30 lines of output, for error messages. */
  recent(): string;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves once it has ended. */
  stop(timeoutMs: number): Promise<void>;
}

/** Run a short command to completion; its output goes to `log`, and into the error if it fails. */
export async function runToCompletion(binary: string, args: string[], opts: ProcessOptions): Promise<void> {
  const child = spawn(binary, args, { env: opts.env, ...(opts.cwd ? { cwd: opts.cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, opts.log);
  const errTail = lines(child.stderr, opts.log);
  const ended = await exitOf(child);
  if (ended !== 'exit code 0') throw new Error(`${opts.name} ${args.slice(0, 3).join(' ')} failed (${ended}):\n${[...outTail(), ...errTail()].join('\n')}`);
}

/** Start a long-lived server process. */
export function spawnService(binary: string, args: string[], opts: ProcessOptions): ServiceProcess {
  const child = spawn(binary, args, { env: opts.env, ...(opts.cwd ? { cwd: opts.cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, opts.log);
  const errTail = lines(child.stderr, opts.log);
  let exited: string | undefined;
  const exit = exitOf(child).then((why) => (exited = why));

  // If we die without stop() (SIGKILL, a crashed test worker), the watchdog's
  // stdin reaches EOF and it stops the server; on a normal exit, the handler does.
  const watchdog = child.pid
    ? spawn('sh', ['-c', WATCHDOG, `${opts.name.toLowerCase()}-watchdog`, String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] }).on('error', () => {})
    : undefined;
  const onExit = () => child.kill('SIGTERM');
  process.on('exit', onExit);
  void exit.then(() => {
    process.off('exit', onExit);
    watchdog?.kill('SIGKILL');
  });

  return {
    exited: () => exited,
    recent: () => [...outTail(), ...errTail()].slice(-30).join('\n'),
    async stop(timeoutMs) {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Run a build script (hydra/build.sh, kratos/build.sh): progress to `log`, the binary's path from its last stdout line. */
export async function buildBinary(script: string, name: string, log?: (line: string) => void): Promise<string> {
  const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const tail = lines(child.stderr, (l) => log?.(l));
  const ended = await exitOf(child);
  const path = out.trim().split('\n').pop();
  if (ended !== 'exit code 0' || !path) throw new Error(`building ${name} failed (${ended}):\n${tail().join('\n')}`);
  return path;
}

/** GET a JSON document, waiting at most `timeoutMs` (default 5 s). */
export async function getJson<T>(url: string, timeoutMs = 5000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Poll with growing pauses (50 ms doubling to 1 s) until 200, the deadline (epoch ms), or the process exits. */
export async function waitUntilReady(url: string, deadline: number, service: Pick<ServiceProcess, 'exited'> & { name: string }): Promise<void> {
  let pause = 50;
  for (;;) {
    if (service.exited() !== undefined) throw new Error(`${service.name} ended before it was ready (${service.exited()})`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} in time`);
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 1000);
  }
}

/** Feed each line of `stream` to `sink`; returns a function giving the last 50 lines. */
function lines(stream: NodeJS.ReadableStream, sink: (line: string) => void): () => string[] {
  const kept: string[] = [];
  let partial = '';
  const emit = (line: string) => {
    sink(line);
    kept.push(line);
    if (kept.length > 50) kept.shift();
  };
  stream.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    parts.forEach(emit);
  });
  stream.on('end', () => partial && emit(partial));
  return () => kept;
}

/** Resolves, once the process and its pipes are done, with how it ended: "exit code 0", "signal SIGTERM", "spawn error: …". */
function exitOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    child.once('error', (e) => resolve(`spawn error: ${e.message}`));
    child.once('close', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
  });
}
