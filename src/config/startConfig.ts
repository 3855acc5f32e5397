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
  if (lines.length > 0) problems.push(`Invalid configuration (npm start):\n${lines.join('\n')}`);
  if (!server || !parsed.success || problems.length > 0) throw new ConfigError(problems.join('\n'));
  const e = parsed.data;
  const external = Boolean(env.HYDRA_PUBLIC_URL || env.HYDRA_ADMIN_URL);
  return {
    server,
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
