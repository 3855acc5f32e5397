/**
 * Build (once) and run the real Ory Hydra for `npm start` and the end-to-end
 * tests. No module state and no environment reads at import: callers pass
 * everything in. Facts relied on (Hydra v2.3.0) are in hydra/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hydraAdminUrls, hydraPublicUrls } from '../src/hydra/endpoints.js';

const HYDRA_DIR = fileURLToPath(new URL('../hydra/', import.meta.url));
const CONFIG = `${HYDRA_DIR}hydra.yml`;
/** Waits for EOF on stdin (our end closes when we die), then TERM, then KILL after 10 s, to pid $1. */
const WATCHDOG = 'read x; kill -TERM "$1" 2>/dev/null; for i in $(seq 50); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.2; done; kill -KILL "$1"';

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
  /**
   * The token endpoint clients are told about (ours, `<base>/token`). Hydra
   * accepts a private_key_jwt assertion whose `aud` is this or its own token
   * endpoint (fositex GetTokenURLs), and advertises it in discovery.
   */
  tokenUrl?: string;
  /** A PEM bundle of CAs Hydra trusts for outgoing https (a client's jwks_uri): Go's SSL_CERT_FILE. Tests only. */
  caFile?: string;
  /** "memory"; the path of a SQLite file; or a full DSN (postgres://…). Anything but memory is migrated first. */
  dsn: string;
  accessTokenStrategy: 'opaque' | 'jwt';
  /** Encrypts Hydra's stored secrets (16+ characters); keep it stable for a persistent DSN. */
  secretsSystem: string;
  /** More Hydra environment variables; they override hydra.yml and the values set here. */
  env?: Record<string, string>;
  /** Receives each line Hydra prints (stdout and stderr). */
  log?: (line: string) => void;
  /**
   * How long to wait for Hydra's readiness check, in milliseconds (default
   * 90 s: a fresh Hydra generates RSA-4096 key sets first, which took over
   * 30 s on a shared 2-core machine under load).
   */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL, in milliseconds (default 5 s). */
  stopTimeoutMs?: number;
}

export interface RunningHydra {
  publicUrl: string;
  adminUrl: string;
  /** The issuer from Hydra's discovery document, exactly as tokens carry it in `iss`. */
  issuer: string;
  /** Version Hydra reports on /version, e.g. v2.3.0. */
  version: string;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves once Hydra has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Build Hydra if it is not cached yet (hydra/build.sh) and return the binary's path. */
export async function ensureHydraBinary(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const child = spawn('bash', [`${HYDRA_DIR}build.sh`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const tail = lines(child.stderr, (l) => opts.log?.(l));
  const ended = await exitOf(child);
  const path = out.trim().split('\n').pop();
  if (ended !== 'exit code 0' || !path) throw new Error(`building Hydra failed (${ended}):\n${tail().join('\n')}`);
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

/**
 * Start `hydra serve all --dev` and resolve once its admin API reports ready.
 * --dev is required: Hydra refuses an http issuer without it, even on
 * loopback (driver/config/helper.go). Hydra is also stopped if this process
 * exits, or dies abruptly (a watchdog holds a pipe to us).
 */
export async function startHydra(opts: StartHydraOptions): Promise<RunningHydra> {
  if (opts.secretsSystem.length < 16) throw new Error('startHydra: secretsSystem must be at least 16 characters (Hydra refuses shorter ones)');
  const dsn =
    opts.dsn === 'memory' || opts.dsn.includes('://') ? opts.dsn : `sqlite://${resolve(opts.dsn)}?_fk=true&mode=rwc`;
  const log = opts.log ?? (() => {});
  let migrated = dsn === 'memory'; // serve all migrates an in-memory database itself

  // Ports we pick can be taken by someone else before Hydra binds them: pick again.
  for (let attempt = 1; ; attempt++) {
    const publicPort = opts.publicPort || (await freeLoopbackPort());
    const adminPort = opts.adminPort || (await freeLoopbackPort());
    const publicUrl = `http://127.0.0.1:${publicPort}`;
    const env: Record<string, string> = {
      // Only what Hydra needs: a developer's shell (DSN, LOG_LEVEL, SERVE_*…) must not leak in.
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
      WEBFINGER_OIDC_DISCOVERY_CLIENT_REGISTRATION_URL: hydraPublicUrls(publicUrl).register.href,
      STRATEGIES_ACCESS_TOKEN: opts.accessTokenStrategy,
      ...(opts.tokenUrl ? { WEBFINGER_OIDC_DISCOVERY_TOKEN_URL: opts.tokenUrl } : {}),
      ...(opts.caFile ? { SSL_CERT_FILE: opts.caFile } : {}),
      ...opts.env,
    };
    if (!migrated) {
      await run(opts.binary, ['migrate', 'sql', 'up', '--read-from-env', '--yes', '--config', CONFIG], env, log);
      migrated = true;
    }
    try {
      return await serve(opts, env, `http://127.0.0.1:${adminPort}`, publicUrl, log);
    } catch (e) {
      const portClash = /address already in use/.test((e as Error).message) && !(opts.publicPort && opts.adminPort);
      if (!portClash || attempt >= 3) throw e;
    }
  }
}

async function serve(
  opts: StartHydraOptions,
  env: Record<string, string>,
  adminUrl: string,
  publicUrl: string,
  log: (line: string) => void,
): Promise<RunningHydra> {
  const child = spawn(opts.binary, ['serve', 'all', '--dev', '--sqa-opt-out', '--config', CONFIG], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, log);
  const errTail = lines(child.stderr, log);
  const recent = () => [...outTail(), ...errTail()].slice(-30).join('\n');
  let exited: string | undefined;
  const exit = exitOf(child).then((why) => (exited = why));

  // If we die without stop() (SIGKILL, a crashed test worker), the watchdog's
  // stdin reaches EOF and it stops Hydra; on a normal exit, the handler does.
  const watchdog = child.pid
    ? spawn('sh', ['-c', WATCHDOG, 'hydra-watchdog', String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] }).on('error', () => {})
    : undefined;
  const onExit = () => child.kill('SIGTERM');
  process.on('exit', onExit);
  void exit.then(() => {
    process.off('exit', onExit);
    watchdog?.kill('SIGKILL');
  });

  const stop = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.stopTimeoutMs ?? 5000);
      await exit;
      clearTimeout(timer);
    }
  };

  try {
    await waitUntilReady(hydraAdminUrls(adminUrl).ready.href, opts.readyTimeoutMs ?? 90_000, () => exited);
    const discovery = await getJson<{ issuer?: string }>(hydraPublicUrls(publicUrl).discovery.href);
    const version = await getJson<{ version?: string }>(hydraAdminUrls(adminUrl).version.href);
    if (!discovery.issuer) throw new Error('discovery document has no issuer');
    return { publicUrl, adminUrl, issuer: discovery.issuer, version: version.version ?? 'unknown', stop };
  } catch (e) {
    await stop();
    throw new Error(`Hydra did not become ready: ${(e as Error).message}\n--- Hydra's last lines ---\n${recent()}`);
  }
}

/** Run a short Hydra command to completion; its output goes to `log`, and into the error if it fails. */
async function run(binary: string, args: string[], env: Record<string, string>, log: (line: string) => void): Promise<void> {
  const child = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, log);
  const errTail = lines(child.stderr, log);
  const ended = await exitOf(child);
  if (ended !== 'exit code 0') throw new Error(`hydra ${args.slice(0, 3).join(' ')} failed (${ended}):\n${[...outTail(), ...errTail()].join('\n')}`);
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Poll with growing pauses (50 ms doubling to 1 s) until 200, the deadline, or the process exits. */
async function waitUntilReady(url: string, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 50;
  for (;;) {
    if (exited() !== undefined) throw new Error(`Hydra ended before it was ready (${exited()})`);
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
