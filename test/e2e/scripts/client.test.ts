import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { MACHINE_OWNER } from '../../../src/auth/machineClients.js';
import { loadConfig } from '../../../src/config/config.js';
import { openDatabase } from '../../../src/store/database.js';
import { removedSubjectsStore } from '../../../src/store/removedSubjectsStore.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * `npm run client` against a real Hydra (built from its Go module, DSN
 * memory) and a scratch SQLite database, run as the README says: scripts/
 * client.ts under tsx, from a scratch directory (no .env).
 */
describe('npm run client (machine clients, real Hydra)', () => {
  let hydra: RunningHydra;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-client-cli-'));
    const front = `http://127.0.0.1:${await freeLoopbackPort()}`;
    hydra = await startHydra({
      binary: await ensureHydraBinary(),
      dsn: 'memory',
      accessTokenStrategy: 'opaque',
      ...ourPageUrls(front),
      secretsSystem: randomBytes(24).toString('hex'),
    });
    env = {
      HOST: '127.0.0.1',
      PORT: new URL(front).port,
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      DATABASE_PATH: join(dir, 'hydra-mcp.sqlite'),
    };
  }, 300_000);
  afterAll(async () => {
    await hydra?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'scripts/client.ts'), ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', ...env },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.on('close', (code) => resolve({ code, out, err }));
    });
  const adminGet = async (id: string) => {
    const res = await fetch(`${hydra.adminUrl}/admin/clients/${encodeURIComponent(id)}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const added = (out: string) => ({ id: /client_id: +(\S+)/.exec(out)?.[1] ?? '', secret: /client_secret: +(\S+)/.exec(out)?.[1] ?? '' });

  let bot: { id: string; secret: string };

  it('add --machine NAME --scopes: a client_credentials client for our audience, marked machine, id and secret printed once', async () => {
    const r = await cli('add', '--machine', 'nightly-report', '--scopes', 'notes:read notes:write');
    expect(r, r.err).toMatchObject({ code: 0 });
    bot = added(r.out);
    expect(bot.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(bot.secret.length).toBeGreaterThan(20);
    expect(r.out).toContain('shown this once');
    const { body } = await adminGet(bot.id);
    const mcp = `http://127.0.0.1:${env.PORT}/mcp`;
    expect(body).toMatchObject({
      client_name: 'nightly-report',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'notes:read notes:write',
      audience: [mcp, `http://127.0.0.1:${env.PORT}/sse`],
      metadata: { machine: true },
      owner: MACHINE_OWNER,
    });
    // Hydra's admin API never returns the secret again.
    expect(JSON.stringify(body)).not.toContain(bot.secret);
    // The printed secret works at Hydra, with HTTP Basic as registered.
    const token = await fetch(`${hydra.publicUrl}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${bot.id}:${bot.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'notes:read', audience: mcp }).toString(),
    });
    expect(token.status, await token.clone().text()).toBe(200);
  });

  it('list --machine: machine clients only, never a secret', async () => {
    // A client made at the admin API without the machine mark is not listed, even with our owner.
    await fetch(`${hydra.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'not-a-machine', grant_types: ['client_credentials'], owner: MACHINE_OWNER }),
    });
    const r = await cli('list', '--machine');
    expect(r, r.err).toMatchObject({ code: 0 });
    expect(r.out).toContain(`${bot.id}\tnightly-report\tnotes:read notes:write`);
    expect(r.out).not.toContain('not-a-machine');
    expect(r.out).not.toContain(bot.secret);
    expect(r.out).toMatch(/^1 machine client$/m);
  });

  it.each<[string, string[], number, RegExp]>([
    ['an unknown scope', ['add', '--machine', 'x', '--scopes', 'notes:read admin:all'], 1, /unknown scope "admin:all"; known: openid, notes:read, notes:write/],
    ['offline_access (no refresh token for client credentials)', ['add', '--machine', 'x', '--scopes', 'offline_access'], 1, /scope offline_access is not for machine clients/],
    ['add without --machine', ['add', 'x'], 2, /add needs --machine/],
    ['add --machine without a NAME', ['add', '--machine'], 2, /exactly one NAME/],
    ['list without --machine', ['list'], 2, /list needs --machine/],
    ['remove without an id', ['remove'], 2, /remove needs exactly one client ID/],
    ['an unknown command', ['rotate', 'x'], 2, /unknown command rotate/],
    ['an unknown option', ['add', '--machine', 'x', '--scope', 'notes:read'], 2, /Unknown option '--scope'/],
  ])('refuses %s, creating nothing', async (_name, args, code, message) => {
    const before = (await (await fetch(`${hydra.adminUrl}/admin/clients?page_size=500`)).json()) as unknown[];
    const r = await cli(...args);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
    const after = (await (await fetch(`${hydra.adminUrl}/admin/clients?page_size=500`)).json()) as unknown[];
    expect(after.length).toBe(before.length);
  });

  it('remove ID refuses a client that is not a machine client, and an unknown id', async () => {
    const other = (await (
      await fetch(`${hydra.adminUrl}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'a person’s app' }) })
    ).json()) as { client_id: string };
    const r = await cli('remove', other.client_id);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`client ${other.client_id} is not a machine client; this command removes only machine clients`);
    expect((await adminGet(other.client_id)).status).toBe(200);
    const unknown = await cli('remove', 'no-such-client');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no machine client with id no-such-client');
  });

  it('remove ID: deleted at Hydra, its data deleted, its tokens refused (removed_subjects); a second run finds nothing left', async () => {
    const config = loadConfig(env);
    const db = await openDatabase(config.database);
    try {
      await scopedStoreFor(db, bot.id).notes.add({ title: 'report', body: 'written by the machine' });
      await scopedStoreFor(db, 'someone-else').notes.add({ title: 'mine', body: 'not the machine’s' });
      const r = await cli('remove', bot.id);
      expect(r, r.err).toMatchObject({ code: 0 });
      expect(r.out).toContain(`Removed machine client nightly-report (${bot.id}): its tokens are refused; deleted at Hydra with its tokens; deleted 1 notes, 0 records`);
      expect((await adminGet(bot.id)).status).not.toBe(200);
      expect(await scopedStoreFor(db, bot.id).notes.list()).toEqual([]);
      expect(await scopedStoreFor(db, 'someone-else').notes.list()).toHaveLength(1);
      expect(await removedSubjectsStore(db).find(bot.id)).toMatchObject({ sub: bot.id, completedAt: expect.any(String) });
      const again = await cli('remove', bot.id);
      expect(again, again.err).toMatchObject({ code: 0 });
      expect(again.out).toContain(`Nothing left of machine client ${bot.id}: already removed`);
    } finally {
      await db.destroy();
    }
  });
});
