import { type CliRun, runProjectScript } from '../../support/userCli.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { ensureKratosBinary, type RunningKratos, startKratos } from '../../../scripts/kratos.js';
import { kratosAdminUrls, kratosPublicUrls } from '../../../src/kratos/endpoints.js';
import { kratosHashFromOurs } from '../../../src/account/migrateHash.js';
import { MOVED_FROM_KEY, moveSubjectData } from '../../../src/account/migrateUsers.js';
import { createSealer } from '../../../src/connections/sealing.js';
import { type Db, openDatabase } from '../../../src/store/database.js';

/**
 * `npm run user` with IDENTITY=kratos, and `export-to-kratos`, against the
 * real Ory Kratos (scripts/kratos.ts), the real Ory Hydra and our real SQLite
 * database. The CLI only asks Hydra to revoke, and what matters is for which
 * subject: read from Hydra's own request log (info level, with the query
 * shown: a test-only Hydra setting).
 */
const kratosLog: string[] = [];
let kratos: RunningKratos;
let hydra: RunningHydra;
/** The admin requests Hydra served, as `METHOD /path?query`, from its log. */
const hydraCalls: string[] = [];
let dir: string;
let db: Db;
let env: Record<string, string>;

function run(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  // Only what the test sets, plus PATH: the caller's DATABASE_URL or IDENTITY must not leak in. No .env in `dir`.
  return runProjectScript('scripts/user.ts', args, { cwd: dir, env: { ...env, ...opts.env }, isolatedEnv: true, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
}
const builtin = { IDENTITY: 'builtin' };

async function logIn(identifier: string, password: string): Promise<{ status: number; identityId?: string }> {
  const pub = kratosPublicUrls(kratos.publicUrl);
  const flow = (await (await fetch(pub.apiFlow('login'), { headers: { accept: 'application/json' } })).json()) as { id: string };
  const res = await fetch(pub.submit('login', flow.id), {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ method: 'password', identifier, password }),
  });
  const body = (await res.json()) as { session?: { identity: { id: string } } };
  return { status: res.status, identityId: body.session?.identity.id };
}

async function identityByEmail(email: string) {
  const url = kratosAdminUrls(kratos.adminUrl).identities;
  url.searchParams.set('credentials_identifier', email);
  const list = (await (await fetch(url)).json()) as { id: string; traits: { email: string; name?: string }; metadata_admin?: Record<string, unknown> }[];
  return list[0];
}

const notesOf = (sub: string) => db.selectFrom('notes').select(['title', 'body']).where('sub', '=', sub).orderBy('title').execute();

beforeAll(async () => {
  const binary = await ensureKratosBinary();
  kratos = await startKratos({ binary, dsn: 'memory', uiBaseUrl: 'http://127.0.0.1:3999', log: (l) => kratosLog.push(l) });
  hydra = await startHydra({
    binary: await ensureHydraBinary(),
    dsn: 'memory',
    accessTokenStrategy: 'opaque',
    loginUrl: 'http://127.0.0.1:3999/login',
    consentUrl: 'http://127.0.0.1:3999/consent',
    logoutUrl: 'http://127.0.0.1:3999/logout',
    errorUrl: 'http://127.0.0.1:3999/oauth-error',
    secretsSystem: randomBytes(24).toString('hex'),
    env: { LOG_LEVEL: 'info', LOG_LEAK_SENSITIVE_VALUES: 'true' },
    log: (line) => {
      const m = /msg="?completed handling request.* method:(\w+) path:(\S+) query:(\S*) /.exec(line);
      if (m && m[2]!.startsWith('/admin/oauth2/auth/sessions')) hydraCalls.push(`${m[1]} ${m[2]}${m[3] ? `?${m[3]}` : ''}`);
    },
  });
  dir = await mkdtemp(join(tmpdir(), 'user-kratos-'));
  env = {
    DATABASE_PATH: join(dir, 'store.sqlite'),
    METRICS_PORT: 'off',
    HYDRA_ADMIN_URL: hydra.adminUrl,
    IDENTITY: 'kratos',
    KRATOS_PUBLIC_URL: kratos.publicUrl,
    KRATOS_ADMIN_URL: kratos.adminUrl,
  };
  db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
}, 600_000);

afterAll(async () => {
  await db?.destroy();
  await kratos?.stop();
  await hydra?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const dumpLog = () => console.error(`--- Kratos's last lines ---\n${kratosLog.slice(-40).join('\n')}`);

describe('npm run user with IDENTITY=kratos (real Ory Kratos)', () => {
  it('add creates an identity (with a name), list shows it, a duplicate and a short password are refused', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const add = await run(['add', 'Ada@Example.com', 'Ada Lovelace'], { stdin: 'first password 1\n' });
    expect(add.err).toBe('');
    expect(add.code).toBe(0);
    const ada = await identityByEmail('ada@example.com');
    expect(ada?.traits).toEqual({ email: 'ada@example.com', name: 'Ada Lovelace' });
    expect(add.out).toContain(`Added user ada@example.com (sub ${ada!.id}) in Kratos`);
    expect((await logIn('ada@example.com', 'first password 1')).identityId).toBe(ada!.id);

    const again = await run(['add', 'ada@example.com'], { stdin: 'another password\n' });
    expect(again.code).toBe(1);
    expect(again.err).toContain('a user with email ada@example.com already exists in Kratos');
    const short = await run(['add', 'bob@example.com'], { stdin: 'short\n' });
    expect(short.code).toBe(1);
    expect(short.err).toContain('password must be at least 8 characters');

    const list = await run(['list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(new RegExp(`^ada@example\\.com\\t${ada!.id}\\t\\S+\\tAda Lovelace$`, 'm'));
    expect(list.out).toContain('1 user in Kratos');
  });

  it('passwd sets a new password at Kratos: the old one stops working, the new one signs in; traits are kept', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const r = await run(['passwd', 'ada@example.com'], { stdin: 'second password 2\n' });
    expect(r.err).toBe('');
    expect(r.out).toContain('Password changed for ada@example.com in Kratos');
    expect((await logIn('ada@example.com', 'first password 1')).status).toBe(400);
    const ada = await identityByEmail('ada@example.com');
    expect((await logIn('ada@example.com', 'second password 2')).identityId).toBe(ada!.id);
    expect(ada!.traits.name).toBe('Ada Lovelace');
    const nobody = await run(['passwd', 'nobody@example.com'], { stdin: 'whatever password\n' });
    expect(nobody.code).toBe(1);
    expect(nobody.err).toContain('no user with email nobody@example.com in Kratos');
  });

  it('export prints the data of the identity id; remove revokes at Hydra, deletes the data and the identity; again says nothing is left', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const ada = (await identityByEmail('ada@example.com'))!;
    await db.insertInto('notes').values({ id: randomUUID(), sub: ada.id, title: 'kratos note', body: 'hello' }).execute();
    const exported = await run(['export', 'ada@example.com']);
    expect(exported.code).toBe(0);
    expect(exported.out).toContain(ada.id);
    expect(exported.out).toContain('kratos note');

    hydraCalls.length = 0;
    const removed = await run(['remove', 'ada@example.com']);
    expect(removed.err).toBe('');
    expect(removed.out).toContain(`Removed user ada@example.com (sub ${ada.id})`);
    expect(removed.out).toContain('1 notes');
    expect(removed.out).toContain('and the Kratos identity');
    expect(hydraCalls.some((c) => c.startsWith('DELETE /admin/oauth2/auth/sessions/consent') && c.includes(`subject=${ada.id}`))).toBe(true);
    expect(await identityByEmail('ada@example.com')).toBeUndefined();
    expect(await notesOf(ada.id)).toEqual([]);

    const again = await run(['remove', 'ada@example.com']);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already removed');
  });
});

describe('npm run user -- export-to-kratos (real Ory Kratos, real database)', () => {
  it('writes our scrypt hash in the form Kratos reads: $scrypt$ln=<N>,r=<r>,p=<p>$salt$key', () => {
    expect(kratosHashFromOurs('scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5MTI=')).toBe(
      '$scrypt$ln=32768,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5MTI=',
    );
    expect(() => kratosHashFromOurs('$2b$10$bcrypt')).toThrow(/not a hash in our scrypt format/);
  });

  it('moves built-in users with their old passwords and their notes; skips one whose email Kratos has; a second run moves nothing', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    // Two built-in users with notes, and a third whose email someone registered in Kratos already.
    for (const [email, password] of [
      ['grace@example.com', 'grace old password'],
      ['linus@example.com', 'linus old password'],
      ['taken@example.com', 'taken old password'],
    ]) {
      const r = await run(['add', email!], { stdin: `${password}\n`, env: builtin });
      expect(r.code, r.err).toBe(0);
    }
    const subs = Object.fromEntries((await db.selectFrom('users').select(['email', 'id']).execute()).map((u) => [u.email, u.id]));
    for (const email of ['grace@example.com', 'linus@example.com']) {
      await db.insertInto('notes').values({ id: randomUUID(), sub: subs[email]!, title: `${email} a`, body: 'one' }).execute();
      await db.insertInto('notes').values({ id: randomUUID(), sub: subs[email]!, title: `${email} b`, body: 'two' }).execute();
    }
    const taken = await run(['add', 'taken@example.com', 'Someone Else'], { stdin: 'a kratos password\n' });
    expect(taken.code, taken.err).toBe(0);

    hydraCalls.length = 0;
    const first = await run(['export-to-kratos']);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('2 moved, 1 skipped, 0 failed (of 3 built-in users)');
    expect(first.out).toMatch(/Skipped taken@example\.com \(sub [0-9a-f-]+\): an identity with this email already exists in Kratos/);

    for (const email of ['grace@example.com', 'linus@example.com']) {
      const identity = (await identityByEmail(email))!;
      expect(identity.id).not.toBe(subs[email]);
      expect(identity.metadata_admin).toEqual({ [MOVED_FROM_KEY]: subs[email] });
      expect(first.out).toContain(`Moved ${email}: sub ${subs[email]} -> Kratos identity ${identity.id}; 2 notes, 0 records, 0 connections`);
      // The old password, verified by Kratos against the carried-over scrypt hash.
      const login = await logIn(email, `${email.split('@')[0]} old password`);
      expect(login.status).toBe(200);
      expect(login.identityId).toBe(identity.id);
      expect((await logIn(email, 'not the password')).status).toBe(400);
      // The notes follow the person; nothing is left under the old sub; the built-in account is gone.
      expect(await notesOf(identity.id)).toEqual([
        { title: `${email} a`, body: 'one' },
        { title: `${email} b`, body: 'two' },
      ]);
      expect(await notesOf(subs[email]!)).toEqual([]);
      expect(await db.selectFrom('users').select('id').where('id', '=', subs[email]!).executeTakeFirst()).toBeUndefined();
      // Apps must ask again: the old sub's consents and sign-ins are revoked at Hydra.
      expect(hydraCalls).toContain(`DELETE /admin/oauth2/auth/sessions/consent?subject=${subs[email]}&all=true`);
      expect(hydraCalls).toContain(`DELETE /admin/oauth2/auth/sessions/login?subject=${subs[email]}`);
    }
    // The skipped one is untouched on both sides.
    const other = (await identityByEmail('taken@example.com'))!;
    expect(other.traits.name).toBe('Someone Else');
    expect(other.metadata_admin ?? null).toBeNull();
    expect(await db.selectFrom('users').select('id').where('id', '=', subs['taken@example.com']!).executeTakeFirst()).toBeDefined();
    expect(hydraCalls.some((c) => c.includes(subs['taken@example.com']!))).toBe(false);

    hydraCalls.length = 0;
    const second = await run(['export-to-kratos']);
    expect(second.code).toBe(0);
    expect(second.out).toContain('0 moved, 1 skipped, 0 failed (of 1 built-in user)');
    expect(second.out).toContain('Skipped taken@example.com');
    expect(second.out).not.toContain('Moved ');
    expect(hydraCalls).toEqual([]);
  });

  it('finishes a move an earlier run left half-done (identity created, data not yet moved)', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const r = await run(['add', 'half@example.com'], { stdin: 'half old password\n', env: builtin });
    expect(r.code, r.err).toBe(0);
    const user = (await db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', 'half@example.com').executeTakeFirstOrThrow())!;
    await db.insertInto('notes').values({ id: randomUUID(), sub: user.id, title: 'half', body: 'x' }).execute();
    // What a run that stopped right after creating the identity leaves behind.
    const created = await fetch(kratosAdminUrls(kratos.adminUrl).identities, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        schema_id: 'default',
        traits: { email: 'half@example.com' },
        credentials: { password: { config: { hashed_password: kratosHashFromOurs(user.password_hash) } } },
        metadata_admin: { [MOVED_FROM_KEY]: user.id },
      }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    const again = await run(['export-to-kratos']);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`Moved half@example.com: sub ${user.id} -> Kratos identity ${id} (finishing an earlier run)`);
    expect(await notesOf(id)).toEqual([{ title: 'half', body: 'x' }]);
    expect((await logIn('half@example.com', 'half old password')).identityId).toBe(id);
  });

  it('moves connected accounts re-sealed for the new id, drops pending connect attempts, refuses to move them without keys', async () => {
    const sealer = createSealer([{ kid: 'k1', key: new Uint8Array(randomBytes(32)) }]);
    const [from, to] = [randomUUID(), randomUUID()];
    await db.insertInto('users').values({ id: from, email: `${from}@example.com`, password_hash: 'scrypt$2$1$1$AAAA$AAAA', created_at: new Date().toISOString() }).execute();
    const now = Date.now();
    const sealed = await sealer.seal({ accessToken: 'at-1', refreshToken: 'rt-1' }, { sub: from, provider: 'github' });
    await db
      .insertInto('connections')
      .values({ sub: from, provider: 'github', status: 'active', sealed, key_id: 'k1', scope: null, expires_at: null, created_at: now, updated_at: now, refresh_lease_until: null, refresh_lease_owner: null })
      .execute();
    await db
      .insertInto('connect_states')
      .values({ state_hash: randomUUID(), sub: from, provider: 'github', sealed_verifier: 'x', browser_binding_hash: 'y', elicitation_id: null, expires_at: now + 60_000 })
      .execute();

    // Without a sealer nothing moves (one transaction).
    await expect(moveSubjectData(db, from, to)).rejects.toThrow(/CONNECTION_KEYS/);
    expect(await db.selectFrom('users').select('id').where('id', '=', from).executeTakeFirst()).toBeDefined();

    expect(await moveSubjectData(db, from, to, sealer)).toEqual({ notes: 0, records: 0, connections: 1, connect_states: 1, kratos_subjects: 1, mcp_sessions: 0, mcp_stream_events: 0 });
    const row = await db.selectFrom('connections').selectAll().where('sub', '=', to).executeTakeFirstOrThrow();
    expect(await sealer.open(row.sealed, { sub: to, provider: 'github' })).toEqual({ accessToken: 'at-1', refreshToken: 'rt-1' });
    await expect(sealer.open(row.sealed, { sub: from, provider: 'github' })).rejects.toThrow(/another connection/);
    expect(await db.selectFrom('connect_states').select('sub').where('sub', 'in', [from, to]).execute()).toEqual([]);
    expect(await db.selectFrom('users').select('id').where('id', '=', from).executeTakeFirst()).toBeUndefined();
  });

  it('refuses export-to-kratos without IDENTITY=kratos', async () => {
    const r = await run(['export-to-kratos'], { env: builtin });
    expect(r.code).toBe(1);
    expect(r.err).toContain('export-to-kratos needs IDENTITY=kratos');
  });
});
