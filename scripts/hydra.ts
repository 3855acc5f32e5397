/**
 * Build (once) and run the real Ory Hydra for `npm start` and the end-to-end
 * tests. No module state and no environment reads at import: callers pass
 * everything in.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const HYDRA_DIR = fileURLToPath(new URL('../hydra/', import.meta.url));
const CONFIG = `${HYDRA_DIR}hydra.yml`;

export interface StartHydraOptions {
  /** Path of the Hydra binary (from ensureHydraBinary). */
  binary: string;
  /** Public port on 127.0.0.1; 0 or undefined picks a free one. */
  publicPort?: number;
  /** Admin port on 127.0.0.1; 0 or undefined picks a free one. */
  adminPort?: number;
  loginUrl: string;
  consentUrl: string;
  logoutUrl: string;
  errorUrl: string;
  /** "memory", or the path of a SQLite file (migrated before serving). */
  dsn: string;
  accessTokenStrategy: 'opaque' | 'jwt';
  /** Encrypts Hydra's database secrets; keep it stable for a persistent DSN. */
  secretsSystem: string;
  /** More Hydra environment variables (they override hydra.yml). */
  env?: Record<string, string>;
  /** Receives each line Hydra prints. */
  log?: (line: string) => void;
  /** How long to wait for /health/ready, in milliseconds. */
  readyTimeoutMs?: number;
}

export interface RunningHydra {
  publicUrl: string;
  adminUrl: string;
  /** `iss` of the tokens, exactly as configured. */
  issuer: string;
  /** Version Hydra reports on /version, e.g. v2.3.0. */
  version: string;
  stop(): Promise<void>;
}

/** Build Hydra if it is not cached yet (hydra/build.sh) and return the binary's path. */
export async function ensureHydraBinary(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const child = spawn('bash', [`${HYDRA_DIR}build.sh`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const tail = lines(child.stderr, (l) => opts.log?.(l));
  const code = await exitOf(child);
  const path = out.trim().split('\n').pop();
  if (code !== 0 || !path) throw new Error(`building Hydra failed (exit ${code}):\n${tail().join('\n')}`);
  return path;
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Start `hydra serve all` and resolve once its admin API reports ready. */
export async function startHydra(opts: StartHydraOptions): Promise<RunningHydra> {
  const publicPort = opts.publicPort || (await freeLoopbackPort());
  const adminPort = opts.adminPort || (await freeLoopbackPort());
  const publicUrl = `http://127.0.0.1:${publicPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const dsn = opts.dsn === 'memory' ? 'memory' : `sqlite://${opts.dsn}?_fk=true&mode=rwc`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    DSN: dsn,
    SECRETS_SYSTEM: opts.secretsSystem,
    SERVE_PUBLIC_PORT: String(publicPort),
    SERVE_ADMIN_PORT: String(adminPort),
    URLS_SELF_ISSUER: publicUrl,
    URLS_LOGIN: opts.loginUrl,
    URLS_CONSENT: opts.consentUrl,
    URLS_LOGOUT: opts.logoutUrl,
    URLS_ERROR: opts.errorUrl,
    WEBFINGER_OIDC_DISCOVERY_CLIENT_REGISTRATION_URL: `${publicUrl}/oauth2/register`,
    STRATEGIES_ACCESS_TOKEN: opts.accessTokenStrategy,
    ...opts.env,
  };
  const log = opts.log ?? (() => {});

  if (dsn !== 'memory') {
    const migrate = spawn(opts.binary, ['migrate', 'sql', 'up', '-e', '--yes', '--config', CONFIG], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const outTail = lines(migrate.stdout, log);
    const errTail = lines(migrate.stderr, log);
    const code = await exitOf(migrate);
    if (code !== 0) throw new Error(`hydra migrate failed (exit ${code}):\n${[...outTail(), ...errTail()].join('\n')}`);
  }

  // --dev: Hydra refuses an http issuer without it (driver/config/helper.go).
  const child = spawn(opts.binary, ['serve', 'all', '--dev', '--sqa-opt-out', '--config', CONFIG], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, log);
  const errTail = lines(child.stderr, log);
  const recent = () => [...outTail(), ...errTail()].slice(-30).join('\n');
  let exited: number | null | undefined;
  const exit = exitOf(child).then((code) => (exited = code));

  const stop = async () => {
    if (exited !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };

  try {
    await waitUntilReady(`${adminUrl}/health/ready`, opts.readyTimeoutMs ?? 30_000, () => exited);
  } catch (e) {
    await stop();
    throw new Error(`Hydra did not become ready: ${(e as Error).message}\n--- Hydra's last lines ---\n${recent()}`);
  }
  const version = await fetch(`${adminUrl}/version`)
    .then((r) => r.json() as Promise<{ version?: string }>)
    .then((v) => v.version ?? 'unknown');
  return { publicUrl, adminUrl, issuer: publicUrl, version, stop };
}

/** Poll with growing pauses (50 ms doubling to 1 s) until 200, the deadline, or the process exits. */
async function waitUntilReady(url: string, timeoutMs: number, exitCode: () => number | null | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 50;
  for (;;) {
    if (exitCode() !== undefined) throw new Error(`Hydra exited with code ${exitCode()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 1000);
  }
}

/** Feed each line of `stream` to `sink`; returns a function giving the last 50 lines. */
function lines(stream: NodeJS.ReadableStream, sink: (line: string) => void): () => string[] {
  const kept: string[] = [];
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      sink(line);
      kept.push(line);
      if (kept.length > 50) kept.shift();
    }
  });
  return () => kept;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
