import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createAccountRemoval } from '../../src/account/accountRemoval.js';
import { DEFAULT_REFRESH_MS } from '../../src/account/removedSubjects.js';
import { createHydraAdmin } from '../../src/hydra/index.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { createUserStore } from '../../src/account/userStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { removedSubjectsStore } from '../../src/store/removedSubjectsStore.js';
import { Browser } from '../support/browser.js';
import { call, type Connected, connectAs } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { runUserCli, type Stack, startStack, type TestUser } from './stack.js';

/**
 * Removing a person ends their access at once and leaves none of their rows
 * (issue 18 item 1), against the real Ory Hydra on both token kinds: opaque
 * (Hydra's introspection says inactive as soon as the consent is revoked) on
 * SQLite, JWT (valid by signature until it expires; only our removed-subject
 * list can refuse it) on PostgreSQL.
 */
const KINDS = [
  { tokens: 'opaque', database: 'sqlite' },
  { tokens: 'jwt', database: 'postgres' },
] as const;

/** How long another process (here: the CLI) may take to reach the server's list: one refresh, plus slack for a loaded machine. */
const ACROSS_PROCESSES_MS = DEFAULT_REFRESH_MS + 3_000;

describe.each(KINDS)('account removal with $tokens access tokens on $database (real Ory Hydra)', ({ tokens, database }) => {
  let stack: Stack;
  let db: Db;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: tokens,
      database: database === 'sqlite' ? 'sqlite' : { postgresAdminUrl: inject('postgresUrl') },
    });
    // The test reads the server's own database, as an operator would.
    db = await openDatabase(loadConfig(stack.env).database);
  });
  afterAll(async () => {
    await db?.destroy();
    await stack?.stop();
  });

  const post = (token: string, body: unknown, sessionId?: string) =>
    fetch(stack.mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${token}`,
        ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
      },
      body: JSON.stringify(body),
    });
  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
  const whoami = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } };

  /** The person's open session's next call, as its client sends it (session id and the token it holds). */
  const nextCallStatus = async (c: Connected) => {
    const sessionId = (c.client.transport as StreamableHTTPClientTransport).sessionId!;
    const res = await post(c.oauth.tokens()!.access_token, whoami, sessionId);
    await res.body?.cancel();
    return res.status;
  };
  const refreshAtOurTokenEndpoint = async (c: Connected) => {
    const res = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.oauth.tokens()!.refresh_token!, client_id: c.oauth.clientInformation()!.client_id }),
    });
    return { status: res.status, body: (await res.json()) as { error?: string } };
  };
  const rowsOf = async (sub: string) => ({
    notes: (await db.selectFrom('notes').select('id').where('sub', '=', sub).execute()).length,
    records: (await db.selectFrom('records').select('key').where('sub', '=', sub).execute()).length,
    users: (await db.selectFrom('users').select('id').where('id', '=', sub).execute()).length,
  });

  /** A signed-in person with two notes, a record, an open MCP session and a refresh token. */
  async function activePerson(email: string): Promise<{ user: TestUser; c: Connected }> {
    const user = await stack.addUser(email, `${email} password`);
    const c = await connectAs(stack, user);
    for (const title of ['one', 'two']) expect((await call(c.client, 'notes_add', { title, body: 'private' })).isError).toBe(false);
    expect((await call(c.client, 'long_task', { seconds: 1 })).isError).toBe(false);
    expect(c.oauth.tokens()?.refresh_token, 'the client holds a refresh token').toBeTruthy();
    expect(await rowsOf(user.sub)).toEqual({ notes: 2, records: 1, users: 1 });
    expect(await nextCallStatus(c)).toBe(200);
    return { user, c };
  }

  /**
   * Polls until `status()` answers `expected`; returns how long that took. An
   * opaque token dies in Hydra at once; a JWT when the server next reads the
   * removed-subject list the CLI wrote.
   */
  async function msUntil(status: () => Promise<number>, expected: number, withinMs: number): Promise<number> {
    const started = Date.now();
    let last = 0;
    while (Date.now() - started < withinMs) {
      last = await status();
      if (last === expected) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`still ${last} after ${withinMs} ms, expected ${expected}`);
  }

  it('`npm run user -- remove`: open session, refresh token and unexpired access token stop working, no row remains; a re-run finds nothing left', async () => {
    const { user: carol, c } = await activePerson(`carol-${tokens}@example.com`);
    const { c: dan } = await activePerson(`dan-${tokens}@example.com`);
    const accessToken = c.oauth.tokens()!.access_token;

    const removed = await runUserCli(stack.env, ['remove', carol.email.toUpperCase()]);
    expect(removed.err).toBe('');
    expect(removed.code).toBe(0);
    expect(removed.out).toBe(
      `Removed user ${carol.email} (sub ${carol.sub}): Hydra consents, tokens and sign-ins revoked; deleted 2 notes, 1 records, 0 connections and the account\n`,
    );

    // The open session's next call: refused, with the bearer challenge.
    const waited = await msUntil(() => nextCallStatus(c), 401, ACROSS_PROCESSES_MS);
    if (tokens === 'opaque') expect(waited, 'opaque: refused on the first try (Hydra revoked it)').toBeLessThan(100);
    await expect(c.client.callTool({ name: 'whoami', arguments: {} }), 'the SDK client cannot act any more').rejects.toThrow();
    // The unexpired access token, on a new session.
    if (tokens === 'jwt') expect(decodeJwt(accessToken).exp! * 1000, 'the JWT has not expired').toBeGreaterThan(Date.now() + 60_000);
    const fresh = await post(accessToken, initialize);
    expect(fresh.status).toBe(401);
    expect(fresh.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    // The refresh token, at our /token: Hydra deleted it with the consent.
    expect(await refreshAtOurTokenEndpoint(c)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    // No row of the sub remains; Hydra holds no consent of it.
    expect(await rowsOf(carol.sub)).toEqual({ notes: 0, records: 0, users: 0 });
    expect(await createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) }).listConsentSessions(carol.sub)).toEqual([]);
    // Another person is untouched.
    expect(await nextCallStatus(dan)).toBe(200);
    expect((await call(dan.client, 'notes_list')).isError).toBe(false);

    // Idempotent: a second run changes nothing and says so; an unknown email is named.
    const again = await runUserCli(stack.env, ['remove', carol.email]);
    expect(again).toEqual({ code: 0, out: `Nothing left of ${carol.email} (sub ${carol.sub}): already removed\n`, err: '' });
    const unknown = await runUserCli(stack.env, ['remove', 'nobody@example.com']);
    expect(unknown).toEqual({ code: 1, out: '', err: 'error: no user with email nobody@example.com\n' });
    await dan.close();
  });

  it('removed inside the server process (as "Delete my account" does): refused on the first try, JWT included, and the open session closed', async () => {
    const { user: frank, c } = await activePerson(`frank-${tokens}@example.com`);
    const sessions = async () => {
      const text = await (await fetch(stack.server.metricsUrl!)).text();
      return Number(/^mcp_sessions_active\{transport="streamable-http"\} (\d+)$/m.exec(text)?.[1]);
    };
    const before = await sessions();
    expect(await stack.server.removeAccount({ sub: frank.sub })).toEqual({
      sub: frank.sub,
      outcome: 'removed',
      deleted: { notes: 2, records: 1, connections: 0, connect_states: 0, kratos_subjects: 0, mcp_sessions: 0, mcp_stream_events: 0, users: 1 },
    });
    expect(await nextCallStatus(c), 'no waiting for a refresh in the process that removed').toBe(401);
    expect(await sessions(), "the person's open session was closed").toBe(before - 1);
    expect(await refreshAtOurTokenEndpoint(c)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await rowsOf(frank.sub)).toEqual({ notes: 0, records: 0, users: 0 });
  });

  it('"Delete my account" on /account (password, confirmation, CSRF): open session, refresh token and unexpired access token refused at once, no row remains', async () => {
    const { user: hana, c } = await activePerson(`hana-${tokens}@example.com`);
    const accessToken = c.oauth.tokens()!.access_token;
    const browser = new Browser();
    const signIn = await browser.open(`${stack.baseUrl}/account`);
    const account = await signIn.submit('Sign in', { fill: { Email: hana.email, Password: hana.password } });
    expect(account.url.pathname).toBe('/account');
    const confirm = await browser.open(`${stack.baseUrl}/account/delete`);
    expect(confirm.status).toBe(200);
    const deleted = await confirm.submit('Delete my account', {
      fill: { 'Your password': hana.password },
      check: ['I understand that my account and its data will be deleted for good'],
    });
    expect(deleted.status, deleted.text()).toBe(200);
    expect(deleted.text()).toContain('Your account has been deleted');

    expect(await nextCallStatus(c), 'removed in this process: refused on the first try').toBe(401);
    if (tokens === 'jwt') expect(decodeJwt(accessToken).exp! * 1000, 'the JWT has not expired').toBeGreaterThan(Date.now() + 60_000);
    expect((await post(accessToken, initialize)).status).toBe(401);
    expect(await refreshAtOurTokenEndpoint(c)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await rowsOf(hana.sub)).toEqual({ notes: 0, records: 0, users: 0 });
    expect(await createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) }).listConsentSessions(hana.sub)).toEqual([]);
  });

  it('a sign-in that completes during the removal (account row still there) gets nothing that lasts', async () => {
    const gina = await stack.addUser(`gina-${tokens}@example.com`, 'gina password 1');
    const hydraAdmin = createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) });
    const late = new TestOAuthClient('http://127.0.0.1:53682/callback');
    const remove = createAccountRemoval({
      db,
      users: createUserStore(db),
      hydra: hydraAdmin,
      removed: removedSubjectsStore(db),
      log: createLogger('silent'),
      afterStep: async (step) => {
        if (step !== 'data') return;
        // Hydra has been told once; the password still works: sign in and get tokens now.
        // (The connection itself may already be refused: the server reads the list every few seconds.)
        await connectAs(stack, gina, { oauth: late }).then((c) => c.close(), () => undefined);
        expect((await hydraAdmin.introspect(late.tokens()!.refresh_token!)).active, 'a fresh refresh token').toBe(true);
      },
    });
    expect(await remove({ email: gina.email })).toMatchObject({ outcome: 'removed' });
    expect((await hydraAdmin.introspect(late.tokens()!.refresh_token!)).active).toBe(false);
    const refresh = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: late.tokens()!.refresh_token!, client_id: late.clientInformation()!.client_id }),
    });
    expect(refresh.status).toBe(400);
    expect(await msUntil(async () => (await post(late.tokens()!.access_token, initialize)).status, 401, ACROSS_PROCESSES_MS)).toBeGreaterThanOrEqual(0);
  });

  it('a removal that crashes after the Hydra step already refuses the tokens; re-running the CLI finishes it', async () => {
    const { user: erin, c } = await activePerson(`erin-${tokens}@example.com`);
    const remove = createAccountRemoval({
      db,
      users: createUserStore(db),
      hydra: createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) }),
      removed: removedSubjectsStore(db),
      log: createLogger('silent'),
      afterStep: (step) => {
        if (step === 'hydra') throw new Error('simulated crash after the Hydra step');
      },
    });
    await expect(remove({ email: erin.email })).rejects.toThrow('simulated crash after the Hydra step');

    await msUntil(() => nextCallStatus(c), 401, ACROSS_PROCESSES_MS);
    expect(await refreshAtOurTokenEndpoint(c)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await rowsOf(erin.sub), 'half done: the data is still there').toEqual({ notes: 2, records: 1, users: 1 });

    const finish = await runUserCli(stack.env, ['remove', erin.email]);
    expect(finish.code).toBe(0);
    expect(finish.out).toBe(
      `Finished removing user ${erin.email} (sub ${erin.sub}): Hydra consents, tokens and sign-ins revoked; deleted 2 notes, 1 records, 0 connections and the account\n`,
    );
    expect(await rowsOf(erin.sub)).toEqual({ notes: 0, records: 0, users: 0 });
    expect((await runUserCli(stack.env, ['remove', erin.email])).out).toMatch(/^Nothing left of /);
  });
});
