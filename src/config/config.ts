import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ConnectionsSettings } from '../connections/index.js';
import { loadProviderCatalogue } from '../connections/providers.js';
import { parseConnectionKeys } from '../connections/sealing.js';
import { insecurePublicUrls } from './httpsOnly.js';
import { resolveSecretFiles, SecretFileError } from '../lib/secretFiles.js';
import { parseTrustProxy, type TrustProxy } from './trustProxy.js';

/**
 * Every setting of the server, read once from the environment. The rest of the
 * code receives this typed object and never touches `process.env`.
 * `.env.example` mirrors these keys one for one.
 */
export interface Config {
  /** Interface the HTTP server binds to. */
  host: string;
  /** Port the HTTP server listens on. */
  port: number;
  /** The URL people and clients reach this server at; no trailing slash. */
  publicBaseUrl: URL;
  /** Canonical resource URL of the MCP endpoint (RFC 8707 / RFC 9728): `<base>/mcp`. */
  resourceUrl: URL;
  /** URL of the legacy SSE endpoint, `<base>/sse`: a second name of the same resource. */
  sseUrl: URL;
  hydra: {
    /** Hydra's public port (OAuth endpoints, JWKS). */
    publicUrl: URL;
    /** Hydra's admin port (introspection, login/consent API). Never expose it. */
    adminUrl: URL;
    /** `iss` Hydra puts in its tokens, exactly as Hydra writes it. */
    issuer: string;
  };
  /** Where users and tool data live: SQLite by default, PostgreSQL when DATABASE_URL is set. */
  database: { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; poolMax: number };
  /** Signs CSRF tokens and account sessions; the same on every replica. */
  sessionSecret: string;
  /** True when SESSION_SECRET was not set and a random one is used (single process only). */
  sessionSecretGenerated: boolean;
  /** Extra Host header values accepted besides the public URL's (DNS-rebinding protection). */
  allowedHosts: string[];
  /** Extra browser origins allowed on the MCP endpoints ("*" for any). */
  allowedOrigins: string[];
  /** First-party clients that skip the consent page. */
  trustedClientIds: string[];
  /** Upper bound on how long an introspection answer is reused, in seconds. */
  introspectionCacheSeconds: number;
  /** Introspect JWT access tokens as well (revocation seen within the cache bound). */
  alwaysIntrospect: boolean;
  /** How long a removed account's tokens stay refused after its removal, in seconds (≥ Hydra's longest access-token lifetime). */
  removedSubjectRetentionSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** How long a stop waits for requests in flight. */
  shutdownTimeoutSeconds: number;
  /** Streamable HTTP without sessions (any replica serves any request). */
  statelessHttp: boolean;
  /** How long 2025 sessions' stream messages are kept for resuming with Last-Event-ID (0: not kept). */
  streamResumeSeconds: number;
  /** Serve the HTTP+SSE transport (/sse + /messages), deprecated by MCP 2026-07-28. */
  legacySse: boolean;
  /**
   * Fair-use token buckets on /mcp, /sse and /messages (src/limits/mcpRateLimit.ts): per person and
   * app, and per app for the apps MCP_LIMITED_CLIENT_IDS names (undefined when it names none, or
   * MCP_CLIENT_REQUESTS_PER_MINUTE=off); undefined when MCP_REQUESTS_PER_MINUTE=off.
   */
  fairUse?: { principal: { requestsPerMinute: number; burst: number }; client?: { requestsPerMinute: number; burst: number; clientIds: string[] } };
  /** The audit trail (src/audit/): on (default) or off (AUDIT=off, for the benchmark's comparison), and how many days records are kept. */
  audit: { enabled: boolean; retentionDays: number };
  /**
   * Client ID Metadata Documents. `testLoopbackCa` (PEM, from CIMD_TEST_LOOPBACK_CA)
   * lets documents come from loopback addresses under that CA: tests only.
   * `mirrorIdleDays` (CIMD_MIRROR_IDLE_DAYS): a document client given no
   * token for that long has its Hydra mirror deleted (src/auth/cimd/).
   */
  cimd: { testLoopbackCa?: string; mirrorIdleDays: number };
  /**
   * Connected accounts (issue 14): the providers of CONNECTIONS_FILE, the keys
   * that seal their tokens (CONNECTION_KEYS, newest first), and how long a
   * tool call waits for a person to connect. Undefined without CONNECTIONS_FILE.
   */
  connections?: ConnectionsSettings;
  /** Prometheus listener; undefined when METRICS_PORT=off. Port 0 picks a free one. */
  metrics?: { host: string; port: number };
  /**
   * Who keeps people's accounts (IDENTITY): our users table, or Ory Kratos
   * (issue 15), whose public API browsers reach at `publicUrl` and whose admin
   * API only this server reaches.
   */
  identity: { kind: 'builtin' } | { kind: 'kratos'; publicUrl: URL; adminUrl: URL; sweepSeconds: number };
  /** Express's `trust proxy` (TRUST_PROXY): which X-Forwarded-* hops set req.ip and req.protocol. */
  trustProxy: TrustProxy;
  /** Serve https ourselves (TLS_CERT_FILE + TLS_KEY_FILE, PEM, read at start); undefined: plain http (e.g. behind a TLS proxy). */
  tls?: { cert: string; key: string };
}

const url = (name: string) =>
  z.string().refine((v) => URL.canParse(v), { message: `${name} must be an absolute URL` });

// Fair use: a whole number of requests a minute (at most one a millisecond), or off.
const PER_MINUTE = 'must be a whole number of requests a minute from 1 to 60000, or off';
const perMinute = z.union([z.literal('off'), z.coerce.number({ message: PER_MINUTE }).int({ message: PER_MINUTE }).min(1, { message: PER_MINUTE }).max(60_000, { message: PER_MINUTE })], { message: PER_MINUTE });
const BURST = 'must be a whole number of requests from 1 to 100000';
const burstSize = z.coerce.number({ message: BURST }).int({ message: BURST }).min(1, { message: BURST }).max(100_000, { message: BURST });

const EnvSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_BASE_URL: url('PUBLIC_BASE_URL').optional(),
  HYDRA_PUBLIC_URL: url('HYDRA_PUBLIC_URL').default('http://127.0.0.1:4444'),
  HYDRA_ADMIN_URL: url('HYDRA_ADMIN_URL').default('http://127.0.0.1:4445'),
  HYDRA_ISSUER: url('HYDRA_ISSUER').optional(),
  DATABASE_PATH: z.string().min(1).default('./data/hydra-mcp.sqlite'),
  DATABASE_URL: z
    .string()
    .refine((v) => /^postgres(ql)?:\/\//.test(v) && URL.canParse(v), { message: 'must be a postgres:// URL' })
    .optional(),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(100).default(10),
  INTROSPECTION_CACHE_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  TOKEN_INTROSPECTION: z.enum(['auto', 'always']).default('auto'),
  REMOVED_SUBJECT_RETENTION_SECONDS: z.coerce.number().int().min(60).max(30 * 86400).default(86400),
  SESSION_SECRET: z.string().min(32, { message: 'must be at least 32 characters' }).optional(),
  TRUSTED_CLIENT_IDS: z.string().default(''),
  ALLOWED_HOSTS: z.string().default(''),
  ALLOWED_ORIGINS: z.string().default(''),
  METRICS_PORT: z.union([z.literal('off'), z.coerce.number().int().min(0).max(65535)]).default(9464),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  MCP_STATELESS: z.enum(['true', 'false']).default('false'),
  LEGACY_SSE: z.enum(['on', 'off']).default('on'),
  MCP_REQUESTS_PER_MINUTE: perMinute.default(600),
  MCP_BURST: burstSize.default(60),
  MCP_CLIENT_REQUESTS_PER_MINUTE: perMinute.default(6000),
  MCP_CLIENT_BURST: burstSize.default(600),
  MCP_LIMITED_CLIENT_IDS: z.string().default(''),
  AUDIT: z.enum(['on', 'off']).default('on'),
  AUDIT_RETENTION_DAYS: z.coerce
    .number({ message: 'must be a whole number of days from 1 to 3650' })
    .int({ message: 'must be a whole number of days from 1 to 3650' })
    .min(1, { message: 'must be a whole number of days from 1 to 3650' })
    .max(3650, { message: 'must be a whole number of days from 1 to 3650' })
    .default(90),
  SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(300).default(10),
  // How long a 2025 session's stream messages are kept for a Last-Event-ID resume on any replica; 0: not kept (no resuming).
  MCP_STREAM_RESUME_SECONDS: z.coerce.number().int().min(0).max(3600).default(300),
  NODE_ENV: z.string().optional(),
  CIMD_TEST_LOOPBACK_CA: z.string().min(1).optional(),
  CIMD_MIRROR_IDLE_DAYS: z.coerce
    .number({ message: 'must be a whole number of days from 1 to 3650' })
    .int({ message: 'must be a whole number of days from 1 to 3650' })
    .min(1, { message: 'must be a whole number of days from 1 to 3650' })
    .max(3650, { message: 'must be a whole number of days from 1 to 3650' })
    .default(31),
  CONNECTIONS_FILE: z.string().min(1).optional(),
  CONNECTION_KEYS: z.string().min(1).optional(),
  CONNECT_WAIT_SECONDS: z.coerce.number().int().min(5).max(3600).default(300),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  IDENTITY: z.enum(['builtin', 'kratos']).default('builtin'),
  KRATOS_PUBLIC_URL: url('KRATOS_PUBLIC_URL').optional(),
  KRATOS_ADMIN_URL: url('KRATOS_ADMIN_URL').optional(),
  KRATOS_SWEEP_SECONDS: z.coerce.number().int().min(0).max(86400).default(60),
  // Resolved into SESSION_SECRET, DATABASE_URL, CONNECTION_KEYS by ./secretFiles.ts before this schema runs.
  SESSION_SECRET_FILE: z.string().optional(),
  DATABASE_URL_FILE: z.string().optional(),
  CONNECTION_KEYS_FILE: z.string().optional(),
  TRUST_PROXY: z.string().default('false'),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
});

/** Every environment variable the server reads. */
export const ENV_KEYS: readonly string[] = Object.keys(EnvSchema.shape);

/** Thrown when the environment is invalid; the message names each variable. */
export class ConfigError extends TypeError {
  override name = 'ConfigError';
}

const stripSlash = (s: string) => s.replace(/\/+$/, '');
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

const PLACEHOLDER = /change-?me|youreallyneedtochangethis/i;

/** In production, development secrets stop the start, naming the variable. */
function refuseDevelopmentSecrets(e: z.infer<typeof EnvSchema>): void {
  const problems: string[] = [];
  if (!e.SESSION_SECRET) problems.push('  SESSION_SECRET: must be set in production (a random 32+ character secret, the same on every replica)');
  else if (PLACEHOLDER.test(e.SESSION_SECRET)) problems.push('  SESSION_SECRET: is still a placeholder value; set a random secret');
  if (e.DATABASE_URL && PLACEHOLDER.test(decodeURIComponent(new URL(e.DATABASE_URL).password))) {
    problems.push('  DATABASE_URL: the password is still a placeholder value');
  }
  if (problems.length) throw new ConfigError(`Refusing to start with development secrets (NODE_ENV=production):\n${problems.join('\n')}`);
}

/**
 * CIMD_TEST_LOOPBACK_CA opens the metadata-document fetcher to loopback
 * addresses (an SSRF hole by design, for tests): never in production.
 */
function readTestCa(path: string, nodeEnv: string | undefined): string {
  if (nodeEnv === 'production') {
    throw new ConfigError('Invalid configuration:\n  CIMD_TEST_LOOPBACK_CA: must not be set with NODE_ENV=production (it lets client metadata documents be fetched from loopback)');
  }
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  CIMD_TEST_LOOPBACK_CA: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`Invalid configuration:\n  CIMD_TEST_LOOPBACK_CA: ${path} is not a PEM certificate`);
  return pem;
}

/** Parse and validate `env`; throws ConfigError naming the offending variables. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  let resolved: Record<string, string | undefined>;
  try {
    // Secrets from NAME_FILE first: everything below sees NAME as if set directly.
    resolved = resolveSecretFiles(env);
  } catch (err) {
    if (!(err instanceof SecretFileError)) throw err;
    throw new ConfigError(`Invalid configuration:\n${err.message}`);
  }
  env = resolved;
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (e.NODE_ENV === 'production') refuseDevelopmentSecrets(e);
  const tls = readTls(e.TLS_CERT_FILE, e.TLS_KEY_FILE);
  // Our own issuer (PUBLIC_BASE_URL) must be https off loopback in every mode (RFC 8414 §2: the metadata
  // router refuses it anyway, later); Hydra's URLs too with NODE_ENV=production. Checked before anything opens.
  const production = e.NODE_ENV === 'production';
  const problems = insecurePublicUrls(
    {
      PUBLIC_BASE_URL: e.PUBLIC_BASE_URL ?? `${tls ? 'https' : 'http'}://${e.HOST}:${e.PORT}`,
      ...(production ? { HYDRA_PUBLIC_URL: e.HYDRA_PUBLIC_URL, HYDRA_ISSUER: e.HYDRA_ISSUER } : {}),
    },
    production,
  );
  if (problems.length) throw new ConfigError(`Refusing to start with plain-http public URLs${production ? ' (NODE_ENV=production)' : ''}:\n${problems.join('\n')}`);
  let trustProxy: TrustProxy;
  try {
    trustProxy = parseTrustProxy(e.TRUST_PROXY);
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  TRUST_PROXY: ${(err as Error).message}`);
  }
  const testLoopbackCa = e.CIMD_TEST_LOOPBACK_CA === undefined ? undefined : readTestCa(e.CIMD_TEST_LOOPBACK_CA, e.NODE_ENV);
  const base = stripSlash(e.PUBLIC_BASE_URL ?? `${tls ? 'https' : 'http'}://${e.HOST}:${e.PORT}`);
  const publicBaseUrl = new URL(base);
  if (publicBaseUrl.search || publicBaseUrl.hash) {
    throw new ConfigError('Invalid configuration:\n  PUBLIC_BASE_URL: must not have a query or fragment');
  }
  const hydraPublic = stripSlash(e.HYDRA_PUBLIC_URL);
  const connections = e.CONNECTIONS_FILE === undefined ? undefined : readConnections(e.CONNECTIONS_FILE, e.CONNECTION_KEYS, e.CONNECT_WAIT_SECONDS, env);
  const identity = readIdentity(e);
  return {
    host: e.HOST,
    port: e.PORT,
    publicBaseUrl,
    // No trailing slash: the canonical form clients compare against (RFC 8707 §2).
    resourceUrl: new URL(`${base}/mcp`),
    sseUrl: new URL(`${base}/sse`),
    hydra: {
      publicUrl: new URL(hydraPublic),
      adminUrl: new URL(stripSlash(e.HYDRA_ADMIN_URL)),
      // Hydra uses urls.self.issuer verbatim, so default to the public URL as written.
      issuer: e.HYDRA_ISSUER ?? hydraPublic,
    },
    database: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX }
      : { kind: 'sqlite', path: e.DATABASE_PATH },
    // Without one, a random secret per process: fine for one server, not for replicas.
    sessionSecret: e.SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    sessionSecretGenerated: e.SESSION_SECRET === undefined,
    trustedClientIds: list(e.TRUSTED_CLIENT_IDS),
    allowedHosts: list(e.ALLOWED_HOSTS),
    allowedOrigins: list(e.ALLOWED_ORIGINS),
    introspectionCacheSeconds: e.INTROSPECTION_CACHE_SECONDS,
    alwaysIntrospect: e.TOKEN_INTROSPECTION === 'always',
    removedSubjectRetentionSeconds: e.REMOVED_SUBJECT_RETENTION_SECONDS,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    streamResumeSeconds: e.MCP_STREAM_RESUME_SECONDS,
    statelessHttp: e.MCP_STATELESS === 'true',
    legacySse: e.LEGACY_SSE === 'on',
    ...(e.MCP_REQUESTS_PER_MINUTE === 'off'
      ? {}
      : {
          fairUse: {
            principal: { requestsPerMinute: e.MCP_REQUESTS_PER_MINUTE, burst: e.MCP_BURST },
            ...(e.MCP_CLIENT_REQUESTS_PER_MINUTE === 'off' || list(e.MCP_LIMITED_CLIENT_IDS).length === 0
              ? {}
              : { client: { requestsPerMinute: e.MCP_CLIENT_REQUESTS_PER_MINUTE, burst: e.MCP_CLIENT_BURST, clientIds: list(e.MCP_LIMITED_CLIENT_IDS) } }),
          },
        }),
    audit: { enabled: e.AUDIT === 'on', retentionDays: e.AUDIT_RETENTION_DAYS },
    metrics: e.METRICS_PORT === 'off' ? undefined : { host: e.METRICS_HOST, port: e.METRICS_PORT },
    cimd: { mirrorIdleDays: e.CIMD_MIRROR_IDLE_DAYS, ...(testLoopbackCa === undefined ? {} : { testLoopbackCa }) },
    ...(connections ? { connections } : {}),
    identity,
    trustProxy,
    ...(tls ? { tls } : {}),
  };
}

/** TLS_CERT_FILE and TLS_KEY_FILE: both or neither, each a readable PEM file. */
function readTls(certFile: string | undefined, keyFile: string | undefined): Config['tls'] {
  if (certFile === undefined && keyFile === undefined) return undefined;
  const problems: string[] = [];
  if (certFile === undefined) problems.push('  TLS_CERT_FILE: must be set when TLS_KEY_FILE is');
  if (keyFile === undefined) problems.push('  TLS_KEY_FILE: must be set when TLS_CERT_FILE is');
  const read = (name: string, path: string | undefined, marker: RegExp): string => {
    if (path === undefined) return '';
    try {
      const pem = readFileSync(path, 'utf8');
      if (!marker.test(pem)) problems.push(`  ${name}: ${path} is not a PEM file of the expected kind`);
      return pem;
    } catch (err) {
      problems.push(`  ${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
      return '';
    }
  };
  const cert = read('TLS_CERT_FILE', certFile, /-----BEGIN CERTIFICATE-----/);
  const key = read('TLS_KEY_FILE', keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  if (problems.length) throw new ConfigError(`Invalid configuration:\n${problems.join('\n')}`);
  return { cert, key };
}

/** IDENTITY=kratos needs both of Kratos's URLs: there is no default to guess. */
function readIdentity(e: z.infer<typeof EnvSchema>): Config['identity'] {
  if (e.IDENTITY === 'builtin') return { kind: 'builtin' };
  const missing = (['KRATOS_PUBLIC_URL', 'KRATOS_ADMIN_URL'] as const).filter((k) => !e[k]);
  if (missing.length) {
    throw new ConfigError(`Invalid configuration:\n${missing.map((k) => `  ${k}: must be set when IDENTITY=kratos`).join('\n')}`);
  }
  return { kind: 'kratos', publicUrl: new URL(stripSlash(e.KRATOS_PUBLIC_URL!)), adminUrl: new URL(stripSlash(e.KRATOS_ADMIN_URL!)), sweepSeconds: e.KRATOS_SWEEP_SECONDS };
}

/** The provider catalogue and its sealing keys: a catalogue without keys would store tokens in the clear, so it stops the start. */
function readConnections(file: string, keys: string | undefined, waitSeconds: number, env: Record<string, string | undefined>): NonNullable<Config['connections']> {
  let providers: ConnectionsSettings['providers'];
  try {
    providers = loadProviderCatalogue(file, env);
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  ${(err as Error).message.split('\n').join('\n  ')}`);
  }
  if (!keys) {
    throw new ConfigError('Invalid configuration:\n  CONNECTION_KEYS: must be set when CONNECTIONS_FILE is (e.g. `k1:` followed by 32 random bytes in base64url; see .env.example)');
  }
  try {
    return { providers, keys: parseConnectionKeys(keys), waitSeconds };
  } catch (err) {
    throw new ConfigError(`Invalid configuration:\n  ${(err as Error).message}`);
  }
}
