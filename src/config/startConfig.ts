import { z } from 'zod';
import { type Config, ConfigError, loadConfig } from './config.js';

/**
 * What `npm start` (scripts/start.ts) reads: the server's settings
 * (./config.ts) and those of the embedded Hydra (and, with IDENTITY=kratos,
 * the embedded Kratos) it starts. Checked once, in
 * the same way: a wrong value stops the start with the variable's name and
 * what was expected, never a silent default. `.env.example` lists these keys
 * under "Embedded Hydra" and "Embedded Kratos".
 */
export interface StartConfig {
  /** The server's settings, exactly as `loadConfig` gives them. */
  server: Config;
  /** Undefined when HYDRA_PUBLIC_URL or HYDRA_ADMIN_URL names a Hydra that is already running. */
  embeddedHydra?: {
    /** Holds the embedded Hydra's SQLite database and system secret (HYDRA_DATA_DIR). */
    dataDir: string;
    /** Hydra's `strategies.access_token` (HYDRA_ACCESS_TOKEN_STRATEGY). */
    accessTokenStrategy: 'opaque' | 'jwt';
    /** Print Hydra's own log lines (HYDRA_LOG=show). */
    showLogs: boolean;
  };
  /**
   * Set when IDENTITY=kratos and neither KRATOS_PUBLIC_URL nor KRATOS_ADMIN_URL
   * names a Kratos that is already running: `npm start` builds and starts one.
   * Its SQLite file and secrets sit in HYDRA_DATA_DIR beside Hydra's.
   */
  /**
   * Lifetimes the embedded Hydra gives its tokens (Hydra's `ttl.*` and
   * `oauth2.grant.refresh_token.rotation_grace_period`), as Hydra durations
   * ("15m", "720h"). Refresh tokens always rotate in Hydra v2.3: each refresh
   * spends the old one; reusing a spent one after the grace period revokes the chain.
   */
  tokenLifetimes: TokenLifetimes;
  embeddedKratos?: {
    /** Where kratos.sqlite and the Kratos secrets live (HYDRA_DATA_DIR, shared with the embedded Hydra). */
    dataDir: string;
    /** Public API port on 127.0.0.1 (KRATOS_PUBLIC_PORT). */
    publicPort: number;
    /** Admin API port on 127.0.0.1 (KRATOS_ADMIN_PORT). */
    adminPort: number;
    /** Print Kratos's own log lines (KRATOS_LOG=show). */
    showLogs: boolean;
  };
}

export interface TokenLifetimes {
  /** HYDRA_ACCESS_TOKEN_TTL (default 15m): how long a revoked JWT access token keeps working. */
  accessToken: string;
  /** HYDRA_REFRESH_TOKEN_TTL (default 720h): how long a client unused for that long stays signed in. */
  refreshToken: string;
  /** HYDRA_ID_TOKEN_TTL (default 1h). */
  idToken: string;
  /** HYDRA_REFRESH_TOKEN_ROTATION_GRACE (default 30s, at most 5m): a spent refresh token still works this long (several windows sharing one). */
  rotationGracePeriod: string;
}

const DURATION = /^(\d+(ns|us|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Milliseconds in a Hydra (Go) duration such as "1h30m"; Hydra's config schema allows exactly this form. */
export function durationMs(d: string): number {
  return [...d.matchAll(/(\d+)(ns|us|ms|s|m|h)/g)].reduce((sum, m) => sum + Number(m[1]) * UNIT_MS[m[2]!]!, 0);
}

/** A Hydra duration between `min` and `max` (both durations); `fallback` when unset or empty. */
function lifetime(fallback: string, min: string, max: string) {
  return z
    .string()
    .optional()
    .transform((v) => (v ? v : fallback))
    .refine((v) => DURATION.test(v), { error: (i) => `must be a duration such as 15m, 1h or 720h (units ns, us, ms, s, m, h), not ${JSON.stringify(i.input)}` })
    .refine((v) => !DURATION.test(v) || (durationMs(v) >= durationMs(min) && durationMs(v) <= durationMs(max)), {
      error: (i) => `must be from ${min} to ${max}, not ${JSON.stringify(i.input)}`,
    });
}

// A .env file is not read by a shell: "~/x" would become a directory named "~".
const noTilde = z.string().refine((v) => !v.startsWith('~'), { message: '"~" is not expanded here; write the absolute path' });

/** A TCP port; unset or empty means `fallback`. */
function port(fallback: number) {
  return z
    .string()
    .optional()
    .refine((v) => !v || (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535), {
      error: (i) => `must be a port number from 1 to 65535, not ${JSON.stringify(i.input)}`,
    })
    .transform((v) => (v ? Number(v) : fallback));
}

const StartEnvSchema = z.object({
  HYDRA_DATA_DIR: noTilde.refine((v) => v !== '', { message: 'must not be empty; unset it for ./data' }).default('./data'),
  // Hydra's `strategies.access_token` spelling. "JWT" is refused, not lower-cased: one spelling,
  // named in the error, rather than a guess (it used to fall back to opaque without a word).
  HYDRA_ACCESS_TOKEN_STRATEGY: z
    .enum(['opaque', 'jwt'], { error: (i) => `must be "opaque" or "jwt" (lower case), not ${JSON.stringify(i.input)}` })
    .default('opaque'),
  HYDRA_LOG: z.enum(['', 'show'], { error: (i) => `must be "show" (print Hydra's log lines) or empty, not ${JSON.stringify(i.input)}` }).default(''),
  // The embedded Kratos (IDENTITY=kratos without KRATOS_PUBLIC_URL / KRATOS_ADMIN_URL).
  KRATOS_PUBLIC_PORT: port(4433),
  KRATOS_ADMIN_PORT: port(4434),
  KRATOS_LOG: z.enum(['', 'show'], { error: (i) => `must be "show" (print Kratos's log lines) or empty, not ${JSON.stringify(i.input)}` }).default(''),
  // Token lifetimes of the embedded Hydra (docs/operating.md, "Token lifetimes and rotation").
  HYDRA_ACCESS_TOKEN_TTL: lifetime('15m', '1m', '24h'),
  HYDRA_REFRESH_TOKEN_TTL: lifetime('720h', '1h', '8760h'),
  HYDRA_ID_TOKEN_TTL: lifetime('1h', '1m', '24h'),
  // Hydra caps the grace period at 5 minutes.
  HYDRA_REFRESH_TOKEN_ROTATION_GRACE: lifetime('30s', '0s', '5m'),
  // Read by hydra/build.sh, which `npm start` runs with this environment; empty means its default.
  HYDRA_MCP_CACHE: noTilde.optional(),
});

/** Every variable `npm start` reads besides the server's own (ENV_KEYS). */
export const START_ENV_KEYS: readonly string[] = Object.keys(StartEnvSchema.shape);

/**
 * Parse and validate `env` for `npm start`; throws ConfigError naming every
 * offending variable, the server's and the embedded Hydra's together.
 */
export function loadStartConfig(env: Record<string, string | undefined>): StartConfig {
  const parsed = StartEnvSchema.safeParse(env);
  let server: Config | undefined;
  const problems: string[] = [];
  // IDENTITY=kratos with neither Kratos URL: we start Kratos, so the server is checked with the URLs it will get.
  const kratosEmbedded = env.IDENTITY === 'kratos' && !env.KRATOS_PUBLIC_URL && !env.KRATOS_ADMIN_URL;
  const kratosPorts = parsed.success ? parsed.data : { KRATOS_PUBLIC_PORT: 4433, KRATOS_ADMIN_PORT: 4434 };
  const serverEnv = kratosEmbedded ? { ...env, ...embeddedKratosUrls(kratosPorts.KRATOS_PUBLIC_PORT, kratosPorts.KRATOS_ADMIN_PORT) } : env;
  try {
    server = loadConfig(serverEnv);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(e.message);
  }
  const lines = parsed.success ? [] : parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  if (parsed.success && kratosEmbedded) {
    if (parsed.data.KRATOS_PUBLIC_PORT === parsed.data.KRATOS_ADMIN_PORT) lines.push('  KRATOS_ADMIN_PORT: must differ from KRATOS_PUBLIC_PORT');
    // The embedded Kratos serves on 127.0.0.1; its cookies reach us only if we are on 127.0.0.1 too (cookies ignore ports).
    if (server && server.publicBaseUrl.hostname !== '127.0.0.1') {
      lines.push(
        `  PUBLIC_BASE_URL: must be on 127.0.0.1 for the Kratos npm start runs (its session cookie has to reach this server), not ${server.publicBaseUrl.hostname}; or set KRATOS_PUBLIC_URL and KRATOS_ADMIN_URL to a Kratos sharing this server's cookie domain`,
      );
    }
  }
  if (parsed.success && server && server.removedSubjectRetentionSeconds * 1000 < durationMs(parsed.data.HYDRA_ACCESS_TOKEN_TTL)) {
    // A removed person's last access token must be refused until it expires.
    lines.push(`  REMOVED_SUBJECT_RETENTION_SECONDS: must be at least HYDRA_ACCESS_TOKEN_TTL (${parsed.data.HYDRA_ACCESS_TOKEN_TTL}), not ${server.removedSubjectRetentionSeconds}`);
  }
  if (lines.length > 0) problems.push(`Invalid configuration (npm start):\n${lines.join('\n')}`);
  if (!server || !parsed.success || problems.length > 0) throw new ConfigError(problems.join('\n'));
  const e = parsed.data;
  const external = Boolean(env.HYDRA_PUBLIC_URL || env.HYDRA_ADMIN_URL);
  return {
    server,
    tokenLifetimes: {
      accessToken: e.HYDRA_ACCESS_TOKEN_TTL,
      refreshToken: e.HYDRA_REFRESH_TOKEN_TTL,
      idToken: e.HYDRA_ID_TOKEN_TTL,
      rotationGracePeriod: e.HYDRA_REFRESH_TOKEN_ROTATION_GRACE,
    },
    embeddedHydra: external
      ? undefined
      : { dataDir: e.HYDRA_DATA_DIR, accessTokenStrategy: e.HYDRA_ACCESS_TOKEN_STRATEGY, showLogs: e.HYDRA_LOG === 'show' },
    ...(kratosEmbedded
      ? { embeddedKratos: { dataDir: e.HYDRA_DATA_DIR, publicPort: e.KRATOS_PUBLIC_PORT, adminPort: e.KRATOS_ADMIN_PORT, showLogs: e.KRATOS_LOG === 'show' } }
      : {}),
  };
}

/** The KRATOS_PUBLIC_URL / KRATOS_ADMIN_URL our server gets for the Kratos `npm start` runs on these ports. */
export function embeddedKratosUrls(publicPort: number, adminPort: number): { KRATOS_PUBLIC_URL: string; KRATOS_ADMIN_URL: string } {
  return { KRATOS_PUBLIC_URL: `http://127.0.0.1:${publicPort}`, KRATOS_ADMIN_URL: `http://127.0.0.1:${adminPort}` };
}
