import { type CliRun, runProjectScript } from '../support/userCli.js';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { type AuditEvent, auditStore } from '../../src/store/auditStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { Browser, type Page } from '../support/browser.js';
import { call, type Connected, connectAs } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { type Stack, startStack, type TestUser } from './stack.js';
import { connectV2, REVISION } from './v2Client.js';

/** Wait (up to 10 s) until `ok` holds: the writer flushes about once a second. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; !(await ok()); ) {
    if (Date.now() > deadline) throw new Error('audit records did not arrive within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDIRECT = 'http://127.0.0.1:53682/callback';

/** `npm run audit -- …` (scripts/audit.ts under tsx) on the server's database, as an operator runs it. */
function auditCli(env: Record<string, string>, args: string[]): Promise<CliRun> {
  return runProjectScript('scripts/audit.ts', args, { cwd: ROOT, env });
}

/**
 * The audit trail end to end (issue 17, items 1–3), against the real Ory
 * Hydra, the official SDK client over both transports, and each database:
 * two people's tool calls and account events are recorded, each person's
 * Activity page shows their own and nothing else, and the operator CLI finds
 * both.
 */
describe.each([
  { tokens: 'opaque', database: 'sqlite' },
  { tokens: 'jwt', database: 'postgres' },
] as const)('audit trail with $tokens tokens on $database (real Ory Hydra)', ({ tokens, database }) => {
  let stack: Stack;
  let db: Db;
  let alice: TestUser;
  let bob: TestUser;
  let aliceC: Connected;
  let bobC: Connected;
  let aliceAccount: Browser;
  let bobAccount: Browser;
  let bobV2ClientId: string;

  const recordsOf = async (sub: string): Promise<AuditEvent[]> => (await auditStore(db).pageForSubject(sub, { limit: 1000 })).events;
  const signInToAccount = async (browser: Browser, user: TestUser): Promise<Page> => {
    const page = await (await browser.open(`${stack.baseUrl}/account`)).submit('Sign in', { fill: { Email: user.email, Password: user.password } });
    expect(page.text()).toContain(`Signed in as ${user.email}`);
    return page;
  };
  const activity = (browser: Browser, query = '') => browser.open(`${stack.baseUrl}/account/activity${query}`);

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: tokens, database: database === 'sqlite' ? 'sqlite' : { postgresAdminUrl: inject('postgresUrl') } });
    db = await openDatabase(loadConfig(stack.env).database);
    [alice, bob] = [await stack.addUser(`alice-${tokens}@example.com`, 'alice-password-1'), await stack.addUser(`bob-${tokens}@example.com`, 'bob-password-12')];
    // Alice's app names itself with markup: it must reach her page as text.
    aliceC = await connectAs(stack, alice, { oauth: new TestOAuthClient(REDIRECT, { client_name: 'Alice <b>App</b>' }) });
    bobC = await connectAs(stack, bob, { transport: 'sse' });

    expect((await call(aliceC.client, 'whoami')).isError).toBe(false);
    expect((await call(aliceC.client, 'notes_add', { title: 42 })).isError).toBe(true);
    await expect(aliceC.client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/no_such_tool/);
    expect((await call(bobC.client, 'notes_list')).isError).toBe(false);
    // Bob again, with the SDK v2 client on the 2026-07-28 revision and without notes:write: one call, one step-up refusal (403).
    const v2 = await connectV2(stack, bob, { pin: REVISION }, { uncheck: ['notes:write'] });
    try {
      expect((await v2.client.callTool({ name: 'notes_stats', arguments: {} })).isError).toBeFalsy();
      await expect(v2.client.callTool({ name: 'notes_add', arguments: { title: 'x', body: 'y' } })).rejects.toThrow();
      bobV2ClientId = v2.oauth.clientInformation()!.client_id;
    } finally {
      await v2.client.close();
    }
    // A failed sign-in to Alice's account, and one to an address nobody has.
    const failed = await (await new Browser().open(`${stack.baseUrl}/account`)).submit('Sign in', { fill: { Email: alice.email, Password: 'not-her-password' } });
    expect(failed.status).toBe(401);
    await (await new Browser().open(`${stack.baseUrl}/account`)).submit('Sign in', { fill: { Email: `nobody-${tokens}@example.com`, Password: 'whatever-123' } });
    aliceAccount = new Browser();
    bobAccount = new Browser();
    await signInToAccount(aliceAccount, alice);
    await signInToAccount(bobAccount, bob);
    // Written off the request path, within about a second.
    await until(async () => (await recordsOf(alice.sub)).filter((e) => e.kind === 'tool_call').length === 3);
    await until(async () => (await recordsOf(bob.sub)).filter((e) => e.kind === 'tool_call').length === 3);
    await until(async () => (await recordsOf(bob.sub)).some((e) => e.kind === 'sign_in_ok' && !e.clientId));
  }, 300_000);
  afterAll(async () => {
    await aliceC?.close();
    await bobC?.close();
    await db?.destroy();
    await stack?.stop();
  });

  it('each tool call is one record: who, which app, which tool, scopes, outcome, transport, request id; never the arguments', async () => {
    const calls = (await recordsOf(alice.sub)).filter((e) => e.kind === 'tool_call');
    const byTool = Object.fromEntries(calls.map((e) => [e.tool, e]));
    const clientId = aliceC.oauth.clientInformation()!.client_id;
    expect(byTool.whoami).toMatchObject({ outcome: 'ok', clientId, clientName: 'Alice <b>App</b>', transport: 'streamable-http' });
    expect(byTool.whoami!.scopes).toContain('notes:read');
    expect(byTool.whoami!.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(byTool.whoami!.durationMs).toBeGreaterThanOrEqual(0);
    expect(byTool.notes_add).toMatchObject({ outcome: 'invalid_input', clientId });
    expect(byTool.no_such_tool).toMatchObject({ outcome: 'unknown_tool', clientId });
    const bobCalls = (await recordsOf(bob.sub)).filter((e) => e.kind === 'tool_call');
    expect(bobCalls.map((e) => `${e.tool}:${e.outcome}:${e.transport}`).sort()).toEqual([
      'notes_add:insufficient_scope:streamable-http-2026',
      'notes_list:ok:sse',
      'notes_stats:ok:streamable-http-2026',
    ]);
    expect(bobCalls.find((e) => e.tool === 'notes_list')).toMatchObject({ clientName: 'hydra-mcp e2e' });
    const stepUp = bobCalls.find((e) => e.tool === 'notes_add')!;
    expect(stepUp).toMatchObject({ clientId: bobV2ClientId, clientName: 'hydra-mcp e2e (SDK v2)' });
    expect(stepUp.scopes).not.toContain('notes:write');
    // Nothing of the call's arguments (the 42) or tokens reaches a record.
    const everything = JSON.stringify(await auditStore(db).search({ limit: 1000 }));
    expect(everything).not.toContain(aliceC.oauth.tokens()!.access_token);
    expect(everything).not.toMatch(/"42"|: ?42[,}]/);
    expect(everything).not.toContain('not-her-password');
    expect(everything).not.toContain(`nobody-${tokens}@example.com`);
  });

  it('account events: sign-ins (ok and failed), consent granted, client registered', async () => {
    const mine = await recordsOf(alice.sub);
    const kinds = mine.map((e) => `${e.kind}:${e.outcome}`);
    expect(kinds).toEqual(expect.arrayContaining(['sign_in_ok:ok', 'consent_granted:ok', 'sign_in_failed:refused']));
    expect(mine.find((e) => e.kind === 'consent_granted')!.clientName).toBe('Alice <b>App</b>');
    // The unknown address: recorded with no sub and no email.
    const anonymous = (await auditStore(db).search({ limit: 1000 })).filter((e) => e.kind === 'sign_in_failed' && e.sub === undefined);
    expect(anonymous).toEqual([expect.objectContaining({ outcome: 'refused', detail: 'unknown account' })]);
    const registered = await auditStore(db).search({ clientId: aliceC.oauth.clientInformation()!.client_id, limit: 100 });
    expect(registered.filter((e) => e.kind === 'client_registered')).toEqual([expect.objectContaining({ outcome: 'ok', clientName: 'Alice <b>App</b>' })]);
  });

  it("each person's Activity page shows their own records, newest first, by app, escaped — never the other's", async () => {
    const page = await activity(aliceAccount);
    expect(page.status).toBe(200);
    const text = page.text();
    expect(text).toContain('Used tool whoami');
    expect(text).toContain('refused: malformed request');
    expect(text).toContain('refused: no such tool');
    expect(text).toContain('Failed sign-in attempt');
    expect(text).toContain('by Alice <b>App</b>');
    expect(page.html).toContain('Alice &lt;b&gt;App&lt;/b&gt;');
    expect(page.html).not.toContain('<b>App</b>');
    expect(text).not.toContain('notes_list');
    expect(text).not.toContain('notes_stats');
    expect(page.doc.querySelectorAll('ul.activity li')).toHaveLength((await recordsOf(alice.sub)).length);
    const times = page.doc.querySelectorAll('time').map((t) => t.getAttribute('datetime')!);
    expect([...times].sort().reverse()).toEqual(times);

    const bobs = await activity(bobAccount);
    expect(bobs.text()).toContain('Used tool notes_list');
    expect(bobs.text()).toContain('refused: the app lacks a permission');
    expect(bobs.text()).not.toContain('whoami');
    expect(bobs.text()).not.toContain('Alice');
    // Linked from the account page.
    expect((await aliceAccount.open(`${stack.baseUrl}/account`)).doc.querySelector('a[href="/account/activity"]')).not.toBeNull();
  });

  it('paging: a signed cursor walks every record once; bad page sizes and another person’s cursor are 400', async () => {
    const seen: string[] = [];
    let page = await activity(aliceAccount, '?limit=2');
    for (let i = 0; i < 20; i++) {
      expect(page.status).toBe(200);
      seen.push(...page.doc.querySelectorAll('time').map((t) => t.getAttribute('datetime')!));
      const next = page.doc.querySelector('a[rel="next"]');
      if (!next) break;
      page = await aliceAccount.open(new URL(next.getAttribute('href')!, stack.baseUrl).href);
    }
    expect(seen).toHaveLength((await recordsOf(alice.sub)).length);

    const bobFirst = await activity(bobAccount, '?limit=1');
    const bobCursor = new URL(bobFirst.doc.querySelector('a[rel="next"]')!.getAttribute('href')!, stack.baseUrl).search;
    const stolen = await activity(aliceAccount, bobCursor);
    expect(stolen.status).toBe(400);
    expect(stolen.text()).toContain('not valid for your account');
    expect(stolen.doc.querySelectorAll('ul.activity li')).toHaveLength(0);
    for (const q of ['?limit=-1', '?limit=0', '?limit=100000', '?limit=abc', '?limit=1e2', '?limit=2&limit=3', '?after=garbage', '?after=c1.e30.AAAA']) {
      const r = await activity(aliceAccount, q);
      expect(r.status, q).toBe(400);
      expect(r.doc.querySelectorAll('ul.activity li'), q).toHaveLength(0);
    }
    // Not signed in: the sign-in form, no records.
    const stranger = await activity(new Browser());
    expect(stranger.text()).toContain('Sign in to see your activity.');
    expect(stranger.doc.querySelectorAll('ul.activity li')).toHaveLength(0);
  });

  it('withdrawing an app on /account is recorded; the operator CLI finds both people', async () => {
    const account = await aliceAccount.open(`${stack.baseUrl}/account`);
    await account.submit('Remove access');
    await expect.poll(async () => (await recordsOf(alice.sub)).some((e) => e.kind === 'consent_revoked'), { timeout: 10_000 }).toBe(true);
    expect((await activity(aliceAccount)).text()).toContain('Removed access');

    const cli = async (...args: string[]) => {
      const r = await auditCli(stack.env, [...args, '--json']);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as AuditEvent[];
    };
    const aliceTools = (await cli('--sub', alice.sub, '--since', '1h')).filter((e) => e.kind === 'tool_call').map((e) => e.tool);
    expect(aliceTools.sort()).toEqual(['no_such_tool', 'notes_add', 'whoami']);
    expect((await cli('--sub', bob.sub, '--tool', 'notes_list')).map((e) => e.sub)).toEqual([bob.sub]);
    expect((await cli('--client', bobC.oauth.clientInformation()!.client_id)).every((e) => e.sub === bob.sub || e.sub === undefined)).toBe(true);
  }, 60_000);

  it('a call made just before shutdown is written by the stop (records survive the restart)', async () => {
    // Bob's app (Alice withdrew hers above); over SSE, whose POST is answered before the call runs.
    const listed = async () => (await recordsOf(bob.sub)).filter((e) => e.tool === 'notes_list').length;
    const before = await listed();
    expect((await call(bobC.client, 'notes_list')).isError).toBe(false);
    await stack.server.stop();
    expect(await listed()).toBe(before + 1);
  });
});
