/**
 * A real, throw-away PostgreSQL for tests: Debian's server binaries, a fresh
 * cluster in a temp dir on a free loopback port, stopped afterwards. Set
 * TEST_DATABASE_URL to use a running server instead. Missing binaries are an
 * error, never a silent skip.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from '../../scripts/hydra.js';

export interface TestPostgres {
  /** Admin connection URL (database "postgres"). */
  url: string;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) {
    throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian\'s "postgresql" package (apt-get install postgresql) or set TEST_DATABASE_URL');
  }
  return join(root, newest, 'bin');
}


export async function startTestPostgres(): Promise<TestPostgres> {
  if (process.env.TEST_DATABASE_URL) return { url: process.env.TEST_DATABASE_URL, stop: async () => {} };
  const bin = findBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'hydra-mcp-pg-'));
  chmodSync(dir, 0o777);
  // PostgreSQL refuses to run as root; as root, run it as the postgres system user.
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { stdio: 'pipe' }) : execFileSync(join(bin, cmd), args, { stdio: 'pipe' });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freeLoopbackPort();
  const server = asRoot
    ? spawn('runuser', ['-u', 'postgres', '--', join(bin, 'postgres'), '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off'], { stdio: 'pipe' })
    : spawn(join(bin, 'postgres'), ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off'], { stdio: 'pipe' });
  let log = '';
  server.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => server.once('exit', r));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  // Poll with growing pauses until it accepts connections.
  for (let pause = 50, waited = 0; ; waited += pause, pause = Math.min(pause * 2, 500)) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      break;
    } catch {
      await client.end().catch(() => {});
      if (server.exitCode !== null || waited > 20_000) throw new Error(`PostgreSQL did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, pause));
    }
  }
  return {
    url,
    async stop() {
      // Signals to `runuser` do not reach postgres; pg_ctl stops the server itself.
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '20', 'stop']);
      } catch {
        server.kill('SIGKILL');
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh, empty database on `adminUrl`'s server; returns its URL and a dropper. */
export async function createTestDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
