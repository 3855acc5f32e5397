import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinToCpu } from './cpu.js';

export interface BenchServer {
  name: string;
  /** http://127.0.0.1:<port>/mcp */
  mcpUrl: URL;
  metricsUrl: string;
  /** process.memoryUsage() of the server, after a forced GC. */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** CPU time the server process has used so far (user + system, every thread), µs. */
  cpuMicros(): Promise<number>;
  /** The ms of every session this server rebuilt from the shared table so far, in order (started with BENCH_SESSION_REBUILDS=on). */
  rebuildMs(): Promise<number[]>;
  /** One Prometheus sample, e.g. metric('token_cache_entries', { cache: 'jwt' }). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The baseline twin served by the same process (startBenchServer's `twin`): its own port, database and metrics. */
  twin?: { mcpUrl: URL; metric(name: string, labels?: Record<string, string>): Promise<number> };
  stop(): Promise<void>;
}

/** One Prometheus sample from a metrics endpoint. */
async function scrape(serverName: string, metricsUrl: string, metricName: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split('\n')
    .find((l) => (l.startsWith(`${metricName}{`) || l.startsWith(`${metricName} `) ? want.every((w) => l.includes(w)) : false));
  if (!line) throw new Error(`${serverName}: no ${metricName} ${want.join(',')} in metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Ask the server process for `key` ({ [key]: true }) and resolve with its answer's `key`. */
function ask<T>(child: ChildProcess, key: 'memory' | 'cpu' | 'rebuilds'): Promise<T> {
  return new Promise((resolve) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (m[key] === undefined) return;
      child.off('message', onMessage);
      resolve(m[key] as T);
    };
    child.on('message', onMessage);
    child.send({ [key]: true });
  });
}

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Start bench/server.ts in its own Node process (tsx loader, --expose-gc,
 * IPC). `verifier` names the composition (hydra, fixed, introspect-everything).
 */
export async function startBenchServer(
  name: string,
  verifier: string,
  env: Record<string, string>,
  /** Pin the server's threads to this CPU once it is up. */
  cpu?: number,
  /** A second server in the same process (its verifier and extra settings; it gets its own port and database). */
  twin?: { verifier: string; env: Record<string, string>; first: boolean },
): Promise<BenchServer> {
  const child: ChildProcess = fork(SERVER, [], {
    cwd: ROOT,
    execArgv: [
      '--expose-gc',
      '--import',
      'tsx',
      ...(process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      // BENCH_CPU_PROF=<dir>: V8 CPU profiles in <dir>/<server name>/, one per thread (tid 0 is the main thread), written when it stops.
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_CPU_PROF, name)}`] : []),
    ],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      BENCH_VERIFIER: verifier,
      ...(twin ? { BENCH_TWIN: JSON.stringify({ verifier: twin.verifier, env: twin.env }), BENCH_TWIN_FIRST: String(twin.first) } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ url: string; metricsUrl: string; twin?: { url: string; metricsUrl: string } }>((resolve, reject) => {
    // A server that is not up in time is ended, not left running beside the retry.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: not ready after 120 s`));
    }, 120_000);
    child.once('exit', (code) => reject(new Error(`${name}: exited with ${code} before it was ready`)));
    child.on('message', (m: { ready?: boolean; url: string; metricsUrl: string; twin?: { url: string; metricsUrl: string } }) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
  if (cpu !== undefined && child.pid !== undefined) pinToCpu(child.pid, cpu);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    mcpUrl: new URL('/mcp', ready.url),
    metricsUrl: ready.metricsUrl,
    memory: () => ask<NodeJS.MemoryUsage>(child, 'memory'),
    cpuMicros: () => ask<number>(child, 'cpu'),
    rebuildMs: () => ask<number[]>(child, 'rebuilds'),
    metric: (metricName, labels) => scrape(name, ready.metricsUrl, metricName, labels),
    ...(ready.twin ? { twin: { mcpUrl: new URL('/mcp', ready.twin.url), metric: (metricName: string, labels?: Record<string, string>) => scrape(`${name} twin`, ready.twin!.metricsUrl, metricName, labels) } } : {}),
    async stop() {
      if (child.exitCode === null) child.send({ stop: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
