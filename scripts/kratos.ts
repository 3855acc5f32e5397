/**
 * Build (once) and run the real Ory Kratos, the way scripts/hydra.ts does
 * Hydra. No module state and no environment reads at import: callers pass
 * everything in. Facts relied on (Kratos v1.3.1) are in kratos/README.md.
 */
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { kratosAdminUrls, kratosPublicUrls } from '../src/kratos/endpoints.js';
import { buildBinary, getJson, runToCompletion, spawnService, waitUntilReady } from './goService.js';
import { freeLoopbackPort } from './hydra.js';

const KRATOS_DIR = fileURLToPath(new URL('../kratos/', import.meta.url));
const REPO_DIR = fileURLToPath(new URL('../', import.meta.url));
const CONFIG = `${KRATOS_DIR}kratos.yml`;
const SCHEMA_URL = pathToFileURL(`${KRATOS_DIR}identity.schema.json`).href;

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
  return buildBinary(`${KRATOS_DIR}build.sh`, 'Kratos', opts.log);
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
  const kratos = spawnService(opts.binary, ['serve', '--dev', '--sqa-opt-out', '--config', CONFIG], { name: 'Kratos', env, cwd: REPO_DIR, log });
  const stop = () => kratos.stop(opts.stopTimeoutMs ?? 5000);
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    // The two APIs are separate listeners: wait for both.
    await waitUntilReady(kratosAdminUrls(adminUrl).ready.href, deadline, { name: 'Kratos', exited: kratos.exited });
    await waitUntilReady(kratosPublicUrls(publicUrl).ready.href, deadline, { name: 'Kratos', exited: kratos.exited });
    const version = await getJson<{ version?: string }>(kratosAdminUrls(adminUrl).version.href);
    return { publicUrl, adminUrl, version: version.version ?? 'unknown', stop };
  } catch (e) {
    await stop();
    throw new Error(`Kratos did not become ready: ${(e as Error).message}\n--- Kratos's last lines ---\n${kratos.recent()}`);
  }
}

/** Run a short Kratos command to completion; its output goes to `log`, and into the error if it fails. */
const run = (binary: string, args: string[], env: Record<string, string>, log: (line: string) => void) =>
  runToCompletion(binary, args, { name: 'kratos', env, cwd: REPO_DIR, log });
