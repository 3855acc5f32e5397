/**
 * Build (once) and run the real Ory Hydra for `npm start` and the end-to-end
 * tests. No module state and no environment reads at import: callers pass
 * everything in. Facts relied on (Hydra v2.3.0) are in hydra/README.md.
 */
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hydraAdminUrls, hydraPublicUrls } from '../src/hydra/endpoints.js';
import { buildBinary, getJson, runToCompletion, spawnService, waitUntilReady } from './goService.js';

const HYDRA_DIR = fileURLToPath(new URL('../hydra/', import.meta.url));
const CONFIG = `${HYDRA_DIR}hydra.yml`;

/** Where Hydra sends people: our sign-in, consent, logout and error pages on the server at `base`. */
export const ourPageUrls = (base: string): Pick<StartHydraOptions, 'loginUrl' | 'consentUrl' | 'logoutUrl' | 'errorUrl'> => ({
  loginUrl: `${base}/login`,
  consentUrl: `${base}/consent`,
  logoutUrl: `${base}/logout`,
  errorUrl: `${base}/oauth-error`,
});

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
  /** Token lifetimes (Hydra durations); unset ones keep hydra.yml's. */
  tokenLifetimes?: { accessToken?: string; refreshToken?: string; idToken?: string; rotationGracePeriod?: string };
  /**
   * Serve the public port over https with this PEM certificate and key
   * (Hydra's serve.public.tls); the issuer becomes https. The admin port stays
   * plain http on loopback.
   */
  publicTls?: { certFile: string; keyFile: string };
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
  return buildBinary(`${HYDRA_DIR}build.sh`, 'Hydra', opts.log);
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
    const publicUrl = `${opts.publicTls ? 'https' : 'http'}://127.0.0.1:${publicPort}`;
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
      STRATEGIES_ACCESS_TOKEN: opts.accessTokenStrategy,
      ...(opts.tokenUrl ? { WEBFINGER_OIDC_DISCOVERY_TOKEN_URL: opts.tokenUrl } : {}),
      ...(opts.caFile ? { SSL_CERT_FILE: opts.caFile } : {}),
      ...lifetimeEnv(opts.tokenLifetimes),
      ...(opts.publicTls
        ? { SERVE_PUBLIC_TLS_ENABLED: 'true', SERVE_PUBLIC_TLS_CERT_PATH: opts.publicTls.certFile, SERVE_PUBLIC_TLS_KEY_PATH: opts.publicTls.keyFile }
        : {}),
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
  const hydra = spawnService(opts.binary, ['serve', 'all', '--dev', '--sqa-opt-out', '--config', CONFIG], { name: 'Hydra', env, log });
  const stop = () => hydra.stop(opts.stopTimeoutMs ?? 5000);
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    await waitUntilReady(hydraAdminUrls(adminUrl).ready.href, deadline, { name: 'Hydra', exited: hydra.exited });
    // The first discovery request may generate the ID-token key set (RSA-4096 on a
    // new database: seconds on a loaded machine), so it shares the ready deadline.
    const discovery = await getJson<{ issuer?: string }>(hydraPublicUrls(publicUrl).discovery.href, Math.max(5000, deadline - Date.now()));
    const version = await getJson<{ version?: string }>(hydraAdminUrls(adminUrl).version.href);
    if (!discovery.issuer) throw new Error('discovery document has no issuer');
    return { publicUrl, adminUrl, issuer: discovery.issuer, version: version.version ?? 'unknown', stop };
  } catch (e) {
    await stop();
    throw new Error(`Hydra did not become ready: ${(e as Error).message}\n--- Hydra's last lines ---\n${hydra.recent()}`);
  }
}

/** Hydra's environment names for its token lifetimes (ttl.*, oauth2.grant.refresh_token.rotation_grace_period). */
function lifetimeEnv(l: StartHydraOptions['tokenLifetimes']): Record<string, string> {
  if (!l) return {};
  return {
    ...(l.accessToken ? { TTL_ACCESS_TOKEN: l.accessToken } : {}),
    ...(l.refreshToken ? { TTL_REFRESH_TOKEN: l.refreshToken } : {}),
    ...(l.idToken ? { TTL_ID_TOKEN: l.idToken } : {}),
    ...(l.rotationGracePeriod ? { OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD: l.rotationGracePeriod } : {}),
  };
}

/** Run a short Hydra command to completion; its output goes to `log`, and into the error if it fails. */
const run = (binary: string, args: string[], env: Record<string, string>, log: (line: string) => void) => runToCompletion(binary, args, { name: 'hydra', env, log });
