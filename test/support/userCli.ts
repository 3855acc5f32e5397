import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Run one of the project's scripts (`scripts/<name>.ts`) under tsx, as
 * `npm run <name> -- <args>` does, with `stdin` piped in (never a terminal, so
 * a password is read from it). `env` is laid over this process's environment
 * (a variable set to undefined is left out), or with `isolatedEnv` over PATH
 * alone, so a developer's DATABASE_URL or IDENTITY cannot leak in. `cwd`
 * decides which .env the script loads: the checkout's, or none from a scratch
 * directory.
 */
export function runProjectScript(
  script: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string | undefined>; stdin?: string; isolatedEnv?: boolean },
): Promise<CliRun> {
  const env: Record<string, string> = {};
  const base = opts.isolatedEnv ? { PATH: process.env.PATH ?? '' } : process.env;
  for (const [k, v] of Object.entries({ ...base, ...opts.env })) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, script), ...args], {
    cwd: opts.cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  child.stdin.end(opts.stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

/** scripts/user.ts (`npm run user`), with this process's environment under `env`. */
export const runUserScript = (args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; stdin?: string }): Promise<CliRun> =>
  runProjectScript('scripts/user.ts', args, opts);
