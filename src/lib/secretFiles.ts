import { readFileSync } from 'node:fs';

/**
 * Secrets from files (the Docker and Kubernetes secrets convention): every
 * secret variable NAME may instead be given as NAME_FILE, the path of a file
 * holding the value. Resolved once, before the settings are validated, so the
 * rest of the code sees NAME as if it had been set directly.
 */

/** The server's own secret variables. Provider secrets (clientSecretEnv) are resolved by name with `secretFromEnv`. */
export const SECRET_VARIABLES = ['SESSION_SECRET', 'DATABASE_URL', 'CONNECTION_KEYS'] as const;

/** The `_FILE` twin of each secret variable, e.g. SESSION_SECRET_FILE. */
export const SECRET_FILE_VARIABLES = SECRET_VARIABLES.map((name) => `${name}_FILE` as const);

/** Thrown when a secret cannot be resolved; the message names the variable. */
export class SecretFileError extends Error {
  override name = 'SecretFileError';
}

/**
 * The value of secret `name` from `env`: NAME itself, or the contents of the
 * file NAME_FILE names (one trailing newline removed: editors and `echo` add
 * one). Both set, an empty NAME_FILE, or a file that cannot be read → an
 * error naming the variable and, for a file, the reason (never its contents).
 */
export function secretFromEnv(env: Record<string, string | undefined>, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (file === undefined) return direct;
  if (direct !== undefined) throw new SecretFileError(`${name}: set either ${name} or ${name}_FILE, not both`);
  if (file.trim() === '') throw new SecretFileError(`${name}_FILE: must be the path of a file holding ${name}, not empty`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SecretFileError(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return text.replace(/\r?\n$/, '');
}

/**
 * `env` with every secret variable of `names` resolved from its NAME_FILE
 * (the NAME_FILE keys are dropped); throws one SecretFileError listing every
 * problem, each line naming its variable. `env` itself is not changed.
 */
export function resolveSecretFiles(env: Record<string, string | undefined>, names: readonly string[] = SECRET_VARIABLES): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  const problems: string[] = [];
  for (const name of names) {
    if (env[`${name}_FILE`] === undefined) continue;
    try {
      out[name] = secretFromEnv(env, name);
      delete out[`${name}_FILE`];
    } catch (err) {
      if (!(err instanceof SecretFileError)) throw err;
      problems.push(`  ${err.message}`);
    }
  }
  if (problems.length) throw new SecretFileError(problems.join('\n'));
  return out;
}
