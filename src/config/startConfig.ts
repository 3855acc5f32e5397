import { z } from 'zod';
import { type Config, ConfigError, loadConfig } from './config.js';

/**
 * What `npm start` (scripts/start.ts) reads: the server's settings
 * (./config.ts) and those of the embedded Hydra it starts. Checked once, in
 * the same way: a wrong value stops the start with the variable's name and
 * what was expected, never a silent default. `.env.example` lists these keys
 * under "Embedded Hydra".
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
}

// A .env file is not read by a shell: "~/x" would become a directory named "~".
const noTilde = z.string().refine((v) => !v.startsWith('~'), { message: '"~" is not expanded here; write the absolute path' });

const StartEnvSchema = z.object({
  HYDRA_DATA_DIR: noTilde.refine((v) => v !== '', { message: 'must not be empty; unset it for ./data' }).default('./data'),
  // Hydra's `strategies.access_token` spelling. "JWT" is refused, not lower-cased: one spelling,
  // named in the error, rather than a guess (it used to fall back to opaque without a word).
  HYDRA_ACCESS_TOKEN_STRATEGY: z
    .enum(['opaque', 'jwt'], { error: (i) => `must be "opaque" or "jwt" (lower case), not ${JSON.stringify(i.input)}` })
    .default('opaque'),
  HYDRA_LOG: z.enum(['', 'show'], { error: (i) => `must be "show" (print Hydra's log lines) or empty, not ${JSON.stringify(i.input)}` }).default(''),
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
  try {
    server = loadConfig(env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems.push(e.message);
  }
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    problems.push(`Invalid configuration (npm start):\n${lines.join('\n')}`);
  }
  if (!server || !parsed.success) throw new ConfigError(problems.join('\n'));
  const e = parsed.data;
  const external = Boolean(env.HYDRA_PUBLIC_URL || env.HYDRA_ADMIN_URL);
  return {
    server,
    embeddedHydra: external
      ? undefined
      : { dataDir: e.HYDRA_DATA_DIR, accessTokenStrategy: e.HYDRA_ACCESS_TOKEN_STRATEGY, showLogs: e.HYDRA_LOG === 'show' },
  };
}
