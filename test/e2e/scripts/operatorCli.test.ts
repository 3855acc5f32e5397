import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHydraBinary, freeLoopbackPort, ourPageUrls, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { createTestDatabase } from '../../support/postgres.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

/**
 * `hydra-mcp`, the operator CLI, as the image carries it: the files the
 * Dockerfile's build stage copies, built with `npm run build`, then run with
 * only the production dependencies beside it (a farm of links to the packages
 * `npm ls --omit=dev` names), so a command that imports a dev dependency, or
 * a file the build leaves out, fails here as it would in a container.
 */

/** The sources of the build stage's `COPY` lines (the Dockerfile up to its second FROM), with where each lands. */
function buildStageCopies(): { from: string; to: string }[] {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM /m);
  const build = stages[1] ?? '';
  const copies: { from: string; to: string }[] = [];
  for (const [, args] of build.matchAll(/^COPY\s+(?!--from)(.+)$/gm)) {
    const parts = args!.trim().split(/\s+/);
    const dest = parts.pop()!;
    for (const from of parts) copies.push({ from, to: dest.endsWith('/') ? join(dest, from) : dest });
  }
  return copies;
}

/** The top-level folders of node_modules/ that `npm ls --omit=dev` lists (a scoped package as @scope/name). */
async function productionPackages(): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }));
  } catch (e) {
    // npm ls exits 1 on an extraneous or missing package but still lists the tree.
    stdout = (e as { stdout?: string }).stdout ?? '';
  }
  const top = new Set<string>();
  for (const path of stdout.split('\n').filter(Boolean)) {
    const rel = relative(join(ROOT, 'node_modules'), path).split(sep);
    if (rel[0] === '..' || rel[0] === '') continue; // the project itself
    // Nested copies (a/node_modules/b) come along with their parent's link.
    top.add(rel[0]!.startsWith('@') ? `${rel[0]}/${rel[1]}` : rel[0]!);
  }
  return [...top].sort();
}

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe('hydra-mcp, the operator CLI, built as the image builds it', () => {
  let app: string;
  let bin: string;
  let dataDir: string;
  let baseEnv: Record<string, string>;

  /** Run `hydra-mcp <args>` from the built tree (no .env there), with only `env` and PATH set. */
  const cli = (args: string[], env: Record<string, string> = {}, stdin = ''): Promise<Run> =>
    new Promise((resolve) => {
      // The bin itself, so its shebang and executable bit are what runs; `node` is found on PATH as in the image.
      const child = spawn(bin, args, { cwd: app, env: { ...baseEnv, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.on('error', (e) => resolve({ code: null, out, err: `${err}${e.message}` }));
      child.stdin.end(stdin);
      child.on('close', (code) => resolve({ code, out, err }));
    });

  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), 'hydra-mcp-image-'));
    dataDir = mkdtempSync(join(tmpdir(), 'hydra-mcp-image-data-'));
    const copies = buildStageCopies();
    expect(copies.map((c) => c.from)).toEqual(expect.arrayContaining(['package.json', 'src']));
    for (const { from, to } of copies) cpSync(join(ROOT, from), join(app, to), { recursive: true });
    // The build with every dependency (as the build stage has after `npm ci`) …
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
    await run('npm', ['run', 'build'], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    // … then only the production ones (as after `npm prune --omit=dev`).
    unlinkSync(join(app, 'node_modules'));
    mkdirSync(join(app, 'node_modules'));
    for (const name of await productionPackages()) {
      mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name), 'dir');
    }
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    bin = join(app, pkg.bin?.['hydra-mcp'] ?? 'package.json has no bin "hydra-mcp"');
    baseEnv = { PATH: [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter), DATABASE_PATH: join(dataDir, 'hydra-mcp.sqlite') };
  }, 180_000);
  afterAll(() => {
    for (const dir of [app, dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the build holds the package.json bin, executable, with a node shebang; no dev dependency is installed beside it', () => {
    expect(existsSync(bin), `${relative(app, bin)} was not built`).toBe(true);
    expect(() => accessSync(bin, constants.X_OK)).not.toThrow();
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    // The farm is production-only: these are dev dependencies of package.json.
    for (const dev of ['tsx', 'vitest', 'typescript']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'kysely'))).toBe(true);
  });

  it('--help lists every command; each command prints its own usage', async () => {
    const help = await cli(['--help']);
    expect(help, help.err).toMatchObject({ code: 0, err: '' });
    for (const name of ['user', 'client', 'audit', 'connections', 'migrate']) {
      expect(help.out).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
      const usage = await cli([name, '--help']);
      expect(usage, `${name} --help: ${usage.err}`).toMatchObject({ code: 0, err: '' });
      expect(usage.out).toContain(`usage: hydra-mcp ${name}`);
    }
  }, 60_000);

  it.each([
    ['an unknown command', ['frobnicate'], /^error: unknown command "frobnicate"\nusage: hydra-mcp <command>/],
    ['no command', [], /^usage: hydra-mcp <command>/],
    ['a command without its arguments', ['user'], /^usage: hydra-mcp user <command>/],
    ['migrate with an argument', ['migrate', 'now'], /^error: migrate takes no arguments\nusage: hydra-mcp migrate/],
  ])('%s: exit 2, the usage on stderr, nothing on stdout', async (_name, args, message) => {
    const r = await cli(args);
    expect(r.code, r.err).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
  });

  it('migrate on a fresh SQLite file applies every migration; run again it applies nothing', async () => {
    const env = { DATABASE_PATH: join(dataDir, 'migrate.sqlite') };
    const first = await cli(['migrate'], env);
    expect(first, first.err).toMatchObject({ code: 0, err: '' });
    expect(first.out).toMatch(/^applied 0001_\w+\n/);
    expect(first.out).toMatch(/\nApplied \d+ migrations to the sqlite database\n$/);
    const again = await cli(['migrate'], env);
    expect(again, again.err).toMatchObject({ code: 0, err: '', out: 'Nothing to apply: the sqlite database is up to date\n' });
  }, 30_000);

  it('migrate on a fresh PostgreSQL database (DATABASE_URL), then again', async () => {
    const database = await createTestDatabase(inject('postgresUrl'));
    try {
      const first = await cli(['migrate'], { DATABASE_URL: database.url });
      expect(first, first.err).toMatchObject({ code: 0, err: '' });
      expect(first.out).toMatch(/\nApplied \d+ migrations to the postgres database\n$/);
      expect((await cli(['migrate'], { DATABASE_URL: database.url })).out).toBe('Nothing to apply: the postgres database is up to date\n');
    } finally {
      await database.drop();
    }
  }, 30_000);

  it('user add (password on stdin) and user list', async () => {
    const added = await cli(['user', 'add', 'operator@example.com'], {}, 'a long enough password\n');
    expect(added, added.err).toMatchObject({ code: 0, err: '' });
    expect(added.out).toMatch(/^Added user operator@example\.com \(sub [0-9a-f-]{36}\)\n$/);
    const list = await cli(['user', 'list']);
    expect(list, list.err).toMatchObject({ code: 0 });
    expect(list.out).toContain('operator@example.com\t');
    expect(list.out).toContain('1 user in the sqlite database');
  }, 30_000);

  it('audit for a subject with no records: exit 0, an empty list', async () => {
    const json = await cli(['audit', '--sub', 'nobody', '--json']);
    expect(json, json.err).toMatchObject({ code: 0, out: '[]\n' });
    const text = await cli(['audit', '--sub', 'nobody']);
    expect(text).toMatchObject({ code: 0, out: '', err: 'no matching records\n' });
  }, 30_000);

  it('connections reencrypt with nothing stored: exit 0, nothing to do', async () => {
    const catalogue = join(dataDir, 'connections.json');
    writeFileSync(
      catalogue,
      JSON.stringify({
        providers: {
          github: { displayName: 'GitHub', authorizationEndpoint: 'https://github.example/authorize', tokenEndpoint: 'https://github.example/token', clientId: 'c', clientSecret: 's', scopes: ['repo'] },
        },
      }),
    );
    const r = await cli(['connections', 'reencrypt'], { CONNECTIONS_FILE: catalogue, CONNECTION_KEYS: `k1:${randomBytes(32).toString('base64url')}` });
    expect(r, r.err).toMatchObject({ code: 0, err: '' });
    expect(r.out).toContain('Re-encrypted 0 connections with key "k1"');
    expect(r.out).toContain('Connections per key: none stored');
  }, 30_000);

  describe('client, against a real Hydra', () => {
    let hydra: RunningHydra;
    let env: Record<string, string>;
    beforeAll(async () => {
      const front = `http://127.0.0.1:${await freeLoopbackPort()}`;
      hydra = await startHydra({ binary: await ensureHydraBinary(), dsn: 'memory', accessTokenStrategy: 'opaque', ...ourPageUrls(front), secretsSystem: randomBytes(24).toString('hex') });
      env = { HOST: '127.0.0.1', PORT: new URL(front).port, HYDRA_PUBLIC_URL: hydra.publicUrl, HYDRA_ADMIN_URL: hydra.adminUrl, HYDRA_ISSUER: hydra.issuer };
    }, 300_000);
    afterAll(async () => {
      await hydra?.stop();
    });

    it('client add --machine, then list --machine shows it', async () => {
      const added = await cli(['client', 'add', '--machine', 'image-bot', '--scopes', 'notes:read'], env);
      expect(added, added.err).toMatchObject({ code: 0, err: '' });
      const id = /client_id: +(\S+)/.exec(added.out)?.[1];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(added.out).toMatch(/client_secret: +\S{20,}/);
      const list = await cli(['client', 'list', '--machine'], env);
      expect(list, list.err).toMatchObject({ code: 0, err: '' });
      expect(list.out).toContain(`${id}\timage-bot\tnotes:read\t`);
      expect(list.out).toContain('1 machine client\n');
    }, 30_000);
  });
});
