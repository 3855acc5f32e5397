import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kratosAdminUrls, kratosPublicUrls } from '../../../src/kratos/endpoints.js';
import { ensureKratosBinary, type RunningKratos, startKratos } from '../../../scripts/kratos.js';

/**
 * The real Ory Kratos (kratos/build.sh, cached), started by scripts/kratos.ts
 * with kratos/kratos.yml and our identity schema. No stand-in: these pin what
 * issue 15's pages and CLI will rely on. Kratos's log lines are kept and
 * shown only when a test fails.
 */

interface UiMessage {
  id: number;
  text: string;
  type: string;
}
interface UiNode {
  attributes: { name?: string };
  messages: UiMessage[];
}
interface Flow {
  id: string;
  type: string;
  ui: { action: string; nodes: UiNode[]; messages?: UiMessage[] };
}

const PASSWORD = 'correct horse battery staple';
const kratosLog: string[] = [];
let binary: string;
let kratos: RunningKratos;
let pub: ReturnType<typeof kratosPublicUrls>;
let admin: ReturnType<typeof kratosAdminUrls>;

async function call<T>(url: URL, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { accept: 'application/json', ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function createIdentity(email: string, name: string, password = PASSWORD) {
  return call<{ id: string; traits: { email: string; name: string }; schema_id: string }>(admin.identities, {
    body: { schema_id: 'default', traits: { email, name }, credentials: { password: { config: { password } } } },
  });
}

/** Runs the self-service login API flow (no browser, no cookies) to its end. */
async function logIn(identifier: string, password: string) {
  const flow = await call<Flow>(pub.apiFlow('login'));
  expect(flow.status).toBe(200);
  return call<Flow & { session_token?: string; session?: { identity: { id: string } } }>(pub.submit('login', flow.body.id), {
    body: { method: 'password', identifier, password },
  });
}

/** Messages on the flow and on its nodes, as a page would show them. */
function messages(flow: Flow): string[] {
  return [...(flow.ui.messages ?? []), ...flow.ui.nodes.flatMap((n) => n.messages)].map((m) => m.text);
}

/** For ctx.onTestFailed: Kratos's last lines next to the failure. */
function dumpLog() {
  console.error(`--- Kratos's last lines ---\n${kratosLog.slice(-60).join('\n')}`);
}

beforeAll(async () => {
  binary = await ensureKratosBinary();
  kratos = await startKratos({ binary, dsn: 'memory', uiBaseUrl: 'http://127.0.0.1:3999', log: (l) => kratosLog.push(l) });
  pub = kratosPublicUrls(kratos.publicUrl);
  admin = kratosAdminUrls(kratos.adminUrl);
});

afterAll(async () => {
  await kratos?.stop();
});

describe('real Ory Kratos (DSN=memory)', () => {
  it('is v1.3.1, stamped at build time and reported by the admin API', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    expect(kratos.version).toBe('v1.3.1');
    expect((await call<{ version: string }>(admin.version)).body.version).toBe('v1.3.1');
    expect(kratos.publicUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves our identity schema as the default one', async () => {
    const schema = await call<{ properties: { traits: { properties: Record<string, unknown>; required: string[] } } }>(pub.schema('default'));
    expect(schema.status).toBe(200);
    expect(Object.keys(schema.body.properties.traits.properties).sort()).toEqual(['email', 'name']);
    expect(schema.body.properties.traits.required).toEqual(['email']);
  });

  it('creates an identity with a password through the admin API; the API login flow gives a session token; whoami names the identity', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const created = await createIdentity('ada@example.com', 'Ada Lovelace');
    expect(created.status).toBe(201);
    expect(created.body.schema_id).toBe('default');
    expect(created.body.traits).toEqual({ email: 'ada@example.com', name: 'Ada Lovelace' });

    const login = await logIn('ada@example.com', PASSWORD);
    expect(login.status).toBe(200);
    expect(login.body.session_token).toMatch(/^ory_st_/);
    expect(login.body.session?.identity.id).toBe(created.body.id);

    const whoami = await call<{ active: boolean; identity: { id: string; traits: { email: string } } }>(pub.whoami, {
      headers: { 'X-Session-Token': login.body.session_token! },
    });
    expect(whoami.status).toBe(200);
    expect(whoami.body.active).toBe(true);
    expect(whoami.body.identity.id).toBe(created.body.id);
    expect(whoami.body.identity.traits.email).toBe('ada@example.com');
  });

  it('refuses a wrong password with its own message (4000006), and an unknown token at whoami', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    await createIdentity('grace@example.com', 'Grace Hopper');
    const login = await logIn('grace@example.com', 'not the password at all');
    expect(login.status).toBe(400);
    expect(login.body.session_token).toBeUndefined();
    expect(login.body.ui.messages?.map((m) => [m.id, m.type])).toEqual([[4000006, 'error']]);
    expect(messages(login.body)).toEqual([
      'The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.',
    ]);
    const whoami = await fetch(pub.whoami, { headers: { 'X-Session-Token': 'ory_st_forged' } });
    expect(whoami.status).toBe(401);
  });

  it('registration refuses weak passwords with Kratos’s own policy messages, then accepts a good one (haveibeenpwned off)', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const flow = await call<Flow>(pub.apiFlow('registration'));
    expect(flow.status).toBe(200);
    const register = (password: string) =>
      call<Flow & { session_token?: string; identity?: { id: string } }>(pub.submit('registration', flow.body.id), {
        body: { method: 'password', traits: { email: 'bob@example.com', name: 'Bob' }, password },
      });

    const short = await register('short');
    expect(short.status).toBe(400);
    expect(messages(short.body)).toEqual(['The password must be at least 8 characters long, but got 5.']);

    const likeEmail = await register('bob@example.com1');
    expect(likeEmail.status).toBe(400);
    expect(messages(likeEmail.body)).toEqual(['The password can not be used because it is too similar to the identifier.']);

    // A common password passes: the breach check (haveibeenpwned) is off, see kratos/kratos.yml.
    const good = await register('a much longer passphrase 42');
    expect(good.status).toBe(200);
    expect(good.body.session_token).toMatch(/^ory_st_/); // the `session` hook signs the new person in
    expect((await logIn('bob@example.com', 'a much longer passphrase 42')).body.session?.identity.id).toBe(good.body.identity?.id);

    const again = await call<Flow>(pub.apiFlow('registration'));
    const duplicate = await call<Flow>(pub.submit('registration', again.body.id), {
      body: { method: 'password', traits: { email: 'bob@example.com', name: 'Bob again' }, password: 'another long passphrase 43' },
    });
    expect(duplicate.status).toBe(400);
    expect(messages(duplicate.body).join(' ')).toMatch(/exists already/);
  });

  it('refuses an identity the schema does not allow (no email)', async () => {
    const res = await call<{ error: { code: number; reason?: string } }>(admin.identities, {
      body: { schema_id: 'default', traits: { name: 'No Email' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(400);
  });
});

describe('real Ory Kratos on a SQLite file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-kratos-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('migrates the file first, keeps identities across a restart, and creates it private to its owner', async (ctx) => {
    ctx.onTestFailed(dumpLog);
    const file = join(dir, 'kratos.sqlite');
    const log = (l: string) => kratosLog.push(l);
    const first = await startKratos({ binary, dsn: file, uiBaseUrl: 'http://127.0.0.1:3999', log });
    let id: string;
    try {
      const created = await call<{ id: string }>(kratosAdminUrls(first.adminUrl).identities, {
        body: { schema_id: 'default', traits: { email: 'kept@example.com' }, credentials: { password: { config: { password: PASSWORD } } } },
      });
      expect(created.status).toBe(201);
      id = created.body.id;
    } finally {
      await first.stop();
    }
    expect((await stat(file)).mode & 0o777).toBe(0o600); // CGO_CPPFLAGS in kratos/build.sh

    const second = await startKratos({ binary, dsn: file, uiBaseUrl: 'http://127.0.0.1:3999', log });
    try {
      const got = await call<{ id: string; traits: { email: string } }>(kratosAdminUrls(second.adminUrl).identity(id));
      expect(got.status).toBe(200);
      expect(got.body.traits.email).toBe('kept@example.com');
    } finally {
      await second.stop();
    }
  });
});
