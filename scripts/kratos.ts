/**
 * Build (once) and run the real Ory Kratos, the way scripts/hydra.ts does
 * Hydra. No module state and no environment reads at import: callers pass
 * everything in. Facts relied on (Kratos v1.3.1) are in kratos/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { kratosAdminUrls, kratosPublicUrls } from '../src/kratos/endpoints.js';
import { freeLoopbackPort } from './hydra.js';

const KRATOS_DIR = fileURLToPath(new URL('../kratos/', import.meta.url));
const REPO_DIR = fileURLToPath(new URL('../', import.meta.url));
const CONFIG = `${KRATOS_DIR}kratos.yml`;
const SCHEMA_URL = pathToFileURL(`${KRATOS_DIR}identity.schema.json`).href;
/** Waits for EOF on stdin (our end closes when we die), then TERM, then KILL after 10 s, to pid $1. */
const WATCHDOG = 'read x; kill -TERM "$1" 2>/dev/null; for i in $(seq 50); do kill -0 "$1" 2>/dev/null || exit 0; sleep 0.2; done; kill -KILL "$1"';

export interface StartKratosOptions {
  /** Path of the Kratos binary (from ensureKratosBinary). */
  binary: string;
  /** "memory"; the path of a SQLite file; or a full DSN (postgres://…). Anything but memory is migrated first. */
  dsn: string;
  /** Public port on 127.0.0.1; 0 or undefined picks a free one. */
  publicPort?: number;
  /** Admin port on 127.0.0.1; 0 or undefined picks a free one. */
  adminPort?: number;
  /**
   * Our server's base URL (no trailing slash needed). Kratos sends browsers to
   * `<base>/kratos/login`, `/kratos/registration`, `/kratos/settings`,
   * `/kratos/error`; `<base>/` is the default and only allowed return URL.
   */
  uiBaseUrl: string;
  /**
   * Where browsers reach Kratos's public API (serve.public.base_url), e.g. our
   * server's proxy path. Default: Kratos's own public URL.
   */
  publicBaseUrl?: string;
  /**
   * Secrets (each 16+ characters; `cipher` exactly 32). Keep them stable for a
   * persistent DSN: `cookie` signs session cookies, `cipher` encrypts stored
   * tokens. Default: the development values in kratos.yml.
   */
  secrets?: { default?: string; cookie?: string; cipher?: string };
  /** More Kratos environment variables; they override kratos.yml and the values set here. */
  env?: Record<string, string>;
  /** Receives each line Kratos prints (stdout and stderr). Kratos is chatty: capture, don't print. */
  log?: (line: string) => void;
  /** How long to wait for Kratos's readiness checks, in milliseconds (default 30 s). */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL, in milliseconds (default 5 s). */
  stopTimeoutMs?: number;
}

export interface RunningKratos {
  /** Kratos's public API (self-service flows and sessions), e.g. http://127.0.0.1:4433 (no trailing slash). */
  publicUrl: string;
  /** Kratos's admin API (identities, version; see src/kratos/endpoints.ts), no trailing slash. */
  adminUrl: string;
  /** Version Kratos reports on its admin API, e.g. v1.3.1. */
  version: string;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves once Kratos has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Build Kratos if it is not cached yet (kratos/build.sh) and return the binary's path. */
export async function ensureKratosBinary(opts: { log?: (line: string) => void } = {}): Promise<string> {
  const child = spawn('bash', [`${KRATOS_DIR}build.sh`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const tail = lines(child.stderr, (l) => opts.log?.(l));
  const ended = await exitOf(child);
  const path = out.trim().split('\n').pop();
  if (ended !== 'exit code 0' || !path) throw new Error(`building Kratos failed (${ended}):\n${tail().join('\n')}`);
  return path;
}

/**
 * Start `kratos serve --dev` and resolve once both its public and admin APIs
 * report ready. --dev because the URLs are plain http: without it Kratos marks
 * its session and CSRF cookies Secure. Kratos is also stopped if this process
 * exits, or dies abruptly (a watchdog holds a pipe to us).
 */
export async function startKratos(opts: StartKratosOptions): Promise<RunningKratos> {
  const dsn =
    opts.dsn === 'memory' || opts.dsn.includes('://') ? opts.dsn : `sqlite://${resolve(opts.dsn)}?_fk=true&mode=rwc`;
  const ui = opts.uiBaseUrl.replace(/\/+$/, '');
  const log = opts.log ?? (() => {});
  for (const [name, value] of Object.entries(opts.secrets ?? {})) {
    if (value !== undefined && value.length < 16) throw new Error(`startKratos: secrets.${name} must be at least 16 characters`);
  }
  if (opts.secrets?.cipher !== undefined && opts.secrets.cipher.length !== 32) {
    throw new Error('startKratos: secrets.cipher must be exactly 32 characters (Kratos refuses others)');
  }
  let migrated = dsn === 'memory'; // serve migrates an in-memory database itself

  // Ports we pick can be taken by someone else before Kratos binds them: pick again.
  for (let attempt = 1; ; attempt++) {
    const publicPort = opts.publicPort || (await freeLoopbackPort());
    const adminPort = opts.adminPort || (await freeLoopbackPort());
    const publicUrl = `http://127.0.0.1:${publicPort}`;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const env: Record<string, string> = {
      // Only what Kratos needs: a developer's shell (DSN, LOG_LEVEL, SERVE_*…) must not leak in.
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      DSN: dsn,
      SERVE_PUBLIC_PORT: String(publicPort),
      SERVE_ADMIN_PORT: String(adminPort),
      SERVE_PUBLIC_BASE_URL: `${(opts.publicBaseUrl ?? publicUrl).replace(/\/+$/, '')}/`,
      SERVE_ADMIN_BASE_URL: `${adminUrl}/`,
      // Absolute, so Kratos's working directory does not matter (kratos.yml's is relative to the repo root).
      IDENTITY_SCHEMAS: JSON.stringify([{ id: 'default', url: SCHEMA_URL }]),
      SELFSERVICE_DEFAULT_BROWSER_RETURN_URL: `${ui}/`,
      SELFSERVICE_ALLOWED_RETURN_URLS: `${ui}/`,
      SELFSERVICE_FLOWS_ERROR_UI_URL: `${ui}/kratos/error`,
      SELFSERVICE_FLOWS_LOGIN_UI_URL: `${ui}/kratos/login`,
      SELFSERVICE_FLOWS_REGISTRATION_UI_URL: `${ui}/kratos/registration`,
      SELFSERVICE_FLOWS_SETTINGS_UI_URL: `${ui}/kratos/settings`,
      SELFSERVICE_FLOWS_LOGOUT_AFTER_DEFAULT_BROWSER_RETURN_URL: `${ui}/kratos/login`,
      ...(opts.secrets?.default ? { SECRETS_DEFAULT: opts.secrets.default } : {}),
      ...(opts.secrets?.cookie ? { SECRETS_COOKIE: opts.secrets.cookie } : {}),
      ...(opts.secrets?.cipher ? { SECRETS_CIPHER: opts.secrets.cipher } : {}),
      ...opts.env,
    };
    if (!migrated) {
      await run(opts.binary, ['migrate', 'sql', '--read-from-env', '--yes', '--config', CONFIG], env, log);
      migrated = true;
    }
    try {
      return await serve(opts, env, publicUrl, adminUrl, log);
    } catch (e) {
      const portClash = /address already in use/.test((e as Error).message) && !(opts.publicPort && opts.adminPort);
      if (!portClash || attempt >= 3) throw e;
    }
  }
}

async function serve(
  opts: StartKratosOptions,
  env: Record<string, string>,
  publicUrl: string,
  adminUrl: string,
  log: (line: string) => void,
): Promise<RunningKratos> {
  const child = spawn(opts.binary, ['serve', '--dev', '--sqa-opt-out', '--config', CONFIG], {
    cwd: REPO_DIR,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const outTail = lines(child.stdout, log);
  const errTail = lines(child.stderr, log);
  const recent = () => [...outTail(), ...errTail()].slice(-30).join('\n');
  let exited: string | undefined;
  const exit = exitOf(child).then((why) => (exited = why));

  // If we die without stop() (SIGKILL, a crashed test worker), the watchdog's
  // stdin reaches EOF and it stops Kratos; on a normal exit, the handler does.
  const watchdog = child.pid
    ? spawn('sh', ['-c', WATCHDOG, 'kratos-watchdog', String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] }).on('error', () => {})
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
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    // The two APIs are separate listeners: wait for both.
    await waitUntilReady(kratosAdminUrls(adminUrl).ready.href, deadline, () => exited);
    await waitUntilReady(kratosPublicUrls(publicUrl).ready.href, deadline, () => exited);
    const version = await getJson<{ version?: string }>(kratosAdminUrls(adminUrl).version.href);
    return { publicUrl, adminUrl, version: version.version ?? 'unknown', stop };
  } catch (e) {
    await stop();
    throw new Error(`Kratos did not become ready: ${(e as Error).message}\n--- Kratos's last lines ---\n${recent()}`);
  }
}

/** Run a short Kratos command to completion; its output goes to `log`, and into the error if it fails. */
async function run(binary: string, args: string[], env: Record<string, string>, log: (line: string) => void): Promise<void> {
  const child = spawn(binary, args, { cwd: REPO_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const outTail = lines(child.stdout, log);
  const errTail = lines(child.stderr, log);
  const ended = await exitOf(child);
  if (ended !== 'exit code 0') throw new Error(`kratos ${args.slice(0, 2).join(' ')} failed (${ended}):\n${[...outTail(), ...errTail()].join('\n')}`);
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Poll with growing pauses (50 ms doubling to 1 s) until 200, the deadline, or the process exits. */
async function waitUntilReady(url: string, deadline: number, exited: () => string | undefined): Promise<void> {
  let pause = 50;
  for (;;) {
    if (exited() !== undefined) throw new Error(`Kratos ended before it was ready (${exited()})`);
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
