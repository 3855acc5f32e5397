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

/** Run `npm run user -- <args>` (scripts/user.ts under tsx) with `env`, `stdin` piped in. */
export function runUserCli(env: Record<string, string>, args: string[], stdin = ''): Promise<CliRun> {
  return runUserScript(args, { cwd: ROOT, env, stdin });
}

/** A person made as the README says: `npm run user -- add <email>`, password on stdin. */
export interface CliUser {
  email: string;
  password: string;
  sub: string;
}

/** Create a user the way the README says: `npm run user -- add <email>`, password on stdin. */
export async function addUserWithCli(env: Record<string, string>, email: string, password: string): Promise<CliUser> {
  const { code, out, err } = await runUserCli(env, ['add', email], `${password}\n`);
  const sub = /sub ([0-9a-f-]{36})/.exec(out)?.[1];
  if (code !== 0 || !sub) throw new Error(`user add failed (exit ${code}):\n${out}\n${err}`);
  return { email, password, sub };
}
