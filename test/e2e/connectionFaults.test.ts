/**
 * Connected accounts under bad input and faults (issue 14 part 7): our server
 * with its real Ory Hydra, and a SECOND real Ory Hydra as the provider
 * (test/e2e/upstream.ts), configured as two catalogue entries (`upstream`
 * and `other`, two clients at the same Hydra) so a callback can be delivered
 * to the wrong provider. Every case checks the exact refusal (page status and
 * text, or tool result) AND that nothing was stored or changed: the account
 * page, the `connections` row in the server's SQLite, or the connection
 * still working afterwards.
 *
 * The refresh-token-revoked-at-the-provider case lives in connections.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSealer, parseConnectionKeys } from '../../src/connections/sealing.js';
import { type RunningServer, startServer } from '../../src/main.js';
import { upstreamMeTool } from './connections/helpers.js';
import { Browser, type Page } from '../support/browser.js';
import { call, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';

/** Short upstream token lifetime: the refresh-while-down case waits it out. */
const TTL_SECONDS = 6;
const K1 = randomBytes(32).toString('base64url');

let apiUrl = '';
/** Every upstream access token a tool was handed: none may ever reach the logs. */
const seenTokens: string[] = [];
const upstreamMe = upstreamMeTool(() => apiUrl, { onToken: (token) => seenTokens.push(token) });

interface ConnectionRow {
  sub: string;
  provider: string;
  status: string;
  sealed: string;
  key_id: string;
  expires_at: number | null;
  updated_at: number;
}

describe('connected accounts: bad input and faults, refused or survived with nothing lost', () => {
  let upstream: Upstream;
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  let dave: TestUser;
  /** The server the key cases start in place of the stack's own (same database and port), stopped in afterAll. */
  let replacement: RunningServer | undefined;

  beforeAll(async () => {
    upstream = await startUpstream({ accessTokenTtl: `${TTL_SECONDS}s`, storage: 'file' });
    apiUrl = upstream.apiUrl;
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      captureLogs: true,
      extraTools: [upstreamMe as never],
      appEnv: async (base, dir) => {
        const scope = 'offline_access profile';
        const a = await upstream.registerClient({ redirectUris: [`${base}/account/connections/upstream/callback`], scope });
        const b = await upstream.registerClient({ redirectUris: [`${base}/account/connections/other/callback`], scope });
        const entry = (displayName: string, c: { clientId: string; clientSecret: string }) => ({
          displayName,
          issuer: upstream.issuer,
          clientId: c.clientId,
          clientSecret: c.clientSecret,
          scopes: ['offline_access', 'profile'],
        });
        const file = join(dir, 'connections.json');
        await writeFile(file, JSON.stringify({ providers: { upstream: entry('Upstream', a), other: entry('Other', b) } }));
        return { CONNECTIONS_FILE: file, CONNECTION_KEYS: `k1:${K1}`, CONNECT_WAIT_SECONDS: '30' };
      },
    });
    [alice, bob, carol, dave] = await Promise.all([
      stack.addUser('alice@example.com', 'copper lantern 2026'),
      stack.addUser('bob@example.com', 'silver harbour 2026'),
      stack.addUser('carol@example.com', 'plain window 2026'),
      stack.addUser('dave@example.com', 'amber meadow 2026'),
    ]);
  }, 120_000);
  afterAll(async () => {
    await replacement?.stop();
    await stack?.stop();
    await upstream?.stop();
  });

  // --- helpers -------------------------------------------------------------

  const atCallback = (provider: string) => (u: URL) => u.origin === stack.baseUrl && u.pathname === `/account/connections/${provider}/callback`;

  /** The account page, signing in first when this browser has no account session. */
  async function accountPage(browser: Browser, user: TestUser): Promise<Page> {
    let page = await browser.open(`${stack.baseUrl}/account`);
    if (page.text().includes('Sign in to see')) page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } });
    expect(page.status).toBe(200);
    expect(page.text(), page.url.href).toContain(`Signed in as ${user.email}`);
    return page;
  }

  /**
   * The person's part of connecting, up to the provider's redirect back to
   * us: Connect on our page, sign in and decide at the provider. The browser
   * stops before our callback; the callback URL (code and state) is returned.
   */
  async function untilCallback(browser: Browser, user: TestUser, upstreamUser: string, opts: { provider?: string; decision?: 'Allow' | 'Deny' } = {}): Promise<URL> {
    const provider = opts.provider ?? 'upstream';
    const display = provider === 'upstream' ? 'Upstream' : 'Other';
    let page = await browser.open(`${stack.baseUrl}/account/connections/${provider}/connect`);
    if (page.text().includes('Sign in to connect')) page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } });
    page = await page.submit(`Connect ${display}`);
    expect(page.url.origin + page.url.pathname, browser.history.join('\n')).toBe(`${upstream.appUrl}/login`);
    page = await page.submit('Sign in', { fill: { Username: upstreamUser } });
    const back = await page.submit(opts.decision ?? 'Allow', {}, atCallback(provider));
    expect(atCallback(provider)(back.url), browser.history.join('\n')).toBe(true);
    return back.url;
  }

  function withDb<T>(fn: (db: SQLite.Database) => T): T {
    const db = new SQLite(stack.env.DATABASE_PATH!);
    db.pragma('busy_timeout = 5000');
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }
  /** Stop the server now serving (the stack's, or an earlier replacement) and start another process on the same database and port with `keys`. */
  async function replaceServer(keys: string, env: Record<string, string> = {}) {
    await (replacement ?? stack.server).stop();
    replacement = await startServer({ ...stack.env, ...env, CONNECTION_KEYS: keys }, { extraTools: [upstreamMe as never], logSink: (line) => stack.logs.push(line) });
  }
  const unopenable = (sub: string) =>
    stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'stored credential cannot be opened; the person must connect again' && l.sub === sub);
  const logged = (msg: string, sub: string) => stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg && l.sub === sub);
  const failures = () =>
    stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'tool failed' || l.msg === 'page failed' || (l.msg === 'request' && Number(l.status) === 500));

  const rowsOf = (sub: string) => withDb((db) => db.prepare('SELECT * FROM connections WHERE sub = ? ORDER BY provider').all(sub) as ConnectionRow[]);
  const attemptsOf = (sub: string) => withDb((db) => (db.prepare('SELECT count(*) AS n FROM connect_states WHERE sub = ?').get(sub) as { n: number }).n);

  /** Nothing stored for `user`: no row for either provider, and their account page says so. */
  async function expectNothingConnected(user: TestUser, browser = new Browser()) {
    expect(rowsOf(user.sub)).toEqual([]);
    const text = (await accountPage(browser, user)).text();
    expect(text).toContain('Upstream not connected');
    expect(text).toContain('Other not connected');
  }

  // --- cases ---------------------------------------------------------------

  it('1. a forged state on the callback: 400 "unknown, has expired or was already used"; nothing connected', async () => {
    const browser = new Browser();
    await accountPage(browser, alice);
    const forged = `${stack.baseUrl}/account/connections/upstream/callback?code=${randomBytes(24).toString('base64url')}&state=${randomBytes(32).toString('base64url')}`;
    const page = await browser.open(forged);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('This connection attempt is unknown, has expired or was already used. Start again from your account page.');
    // No state at all is refused the same way.
    const none = await browser.open(`${stack.baseUrl}/account/connections/upstream/callback?code=abc`);
    expect(none.status).toBe(400);
    expect(none.text()).toContain('This answer carries no state');
    await expectNothingConnected(alice, browser);
  });

  it('2. a replayed state (the same callback followed twice): the second is refused, the first connection intact', async () => {
    const browser = new Browser();
    const callback = await untilCallback(browser, alice, 'alice-upstream');
    const first = await browser.open(callback.href);
    expect(first.status).toBe(200);
    expect(first.text()).toContain('Upstream connected');
    const [stored] = rowsOf(alice.sub);
    expect(stored).toMatchObject({ provider: 'upstream', status: 'active', key_id: 'k1' });

    const again = await browser.open(callback.href);
    expect(again.status).toBe(400);
    expect(again.text()).toContain('This connection attempt is unknown, has expired or was already used.');
    // The replay changed nothing: the same ciphertext, the same update time; the connection works.
    expect(rowsOf(alice.sub)).toEqual([stored]);
    expect((await accountPage(browser, alice)).text()).toContain('Upstream connected');
    const a = await connectAs(stack, alice);
    try {
      expect((await call(a.client, 'upstream_me')).value).toMatchObject({ sub: 'alice-upstream' });
    } finally {
      await a.close();
    }
  });

  it('3. mix-up: the answer for `upstream` delivered to the callback of `other` is refused (400); nothing connected for either', async () => {
    const browser = new Browser();
    const callback = await untilCallback(browser, bob, 'bob-upstream', { provider: 'upstream' });
    const mixed = new URL(`/account/connections/other/callback${callback.search}`, stack.baseUrl);
    const page = await browser.open(mixed.href);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('This answer came back for a different service than the one you started connecting. Nothing was connected.');
    // The attempt is spent: its own callback now finds nothing either.
    const late = await browser.open(callback.href);
    expect(late.status).toBe(400);
    expect(late.text()).toContain('unknown, has expired or was already used');
    await expectNothingConnected(bob, browser);
  });

  it("4a. a code for someone else's session, followed in another browser (no binding cookie): 400; nothing connected", async () => {
    const carolsBrowser = new Browser();
    const callback = await untilCallback(carolsBrowser, carol, 'carol-upstream');
    const bobsBrowser = new Browser();
    await accountPage(bobsBrowser, bob);
    const page = await bobsBrowser.open(callback.href);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('This connection was started in another browser. Start again from this browser.');
    await expectNothingConnected(bob, bobsBrowser);
    await expectNothingConnected(carol, carolsBrowser);
  });

  it("4b. a code for someone else's session, followed in the same browser now signed in as another account: 403; nothing connected", async () => {
    const browser = new Browser();
    const callback = await untilCallback(browser, carol, 'carol-upstream');
    // Carol signs out; Bob signs in on the same browser, which still holds the attempt's binding cookie.
    const signedOut = await (await accountPage(browser, carol)).submit('Sign out everywhere');
    expect(signedOut.text()).toContain('Signed out everywhere');
    await accountPage(browser, bob);
    const page = await browser.open(callback.href);
    expect(page.status).toBe(403);
    expect(page.text()).toContain('This connection was started by another account than the one signed in here. Nothing was connected.');
    await expectNothingConnected(bob, browser);
    await expectNothingConnected(carol);
  });

  it('5. the person denies at the provider (error=access_denied): 400 page naming access_denied; nothing stored', async () => {
    const browser = new Browser();
    const callback = await untilCallback(browser, bob, 'bob-upstream', { decision: 'Deny' });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const page = await browser.open(callback.href);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('Upstream did not grant access (access_denied). Nothing was connected.');
    // The person's choice: an info line naming the provider's error, not a warning.
    expect(logged('connect: the provider sent an error back instead of a code', bob.sub)).toEqual([
      expect.objectContaining({ level: 'info', provider: 'upstream', oauth_error: 'access_denied' }),
    ]);
    expect(attemptsOf(bob.sub)).toBe(0);
    await expectNothingConnected(bob, browser);
  });

  it('6. the provider is down when our callback redeems the code: 503; once it is back, nothing was stored', async () => {
    const browser = new Browser();
    const callback = await untilCallback(browser, bob, 'bob-upstream');
    await upstream.stopHydra();
    let page: Page;
    try {
      page = await browser.open(callback.href);
    } finally {
      await upstream.startHydraAgain();
    }
    expect(page.status).toBe(503);
    expect(page.text()).toContain('Upstream cannot be reached just now. Start again in a moment.');
    // Issue 30 #5: the line says why, not only that it failed.
    expect(logged('connect: code exchange failed', bob.sub)).toEqual([
      expect.objectContaining({ level: 'warn', provider: 'upstream', kind: 'unavailable', reason: expect.stringMatching(/^code exchange failed: (connection refused \(ECONNREFUSED\)|network error)/) }),
    ]);
    await expectNothingConnected(bob, browser);
    // Starting again works once the provider is back (the failed attempt left nothing in the way).
    const retry = await browser.open((await untilCallback(browser, bob, 'bob-upstream')).href);
    expect(retry.status).toBe(200);
    expect(retry.text()).toContain('Upstream connected');
    // Back to "not connected" for the cases below, through the account page's own Disconnect.
    const after = await (await accountPage(browser, bob)).submit('Disconnect');
    expect(after.url.pathname + after.url.search).toBe('/account?done=disconnected');
    await expectNothingConnected(bob, browser);
  });

  it('7. the provider is down when the token must be refreshed: a tool error saying so, the connection kept and working once it is back', async () => {
    const [before] = rowsOf(alice.sub);
    expect(before?.status).toBe('active');
    // Past the access token's expiry, so the next call must refresh.
    const wait = (Number(before!.expires_at) + 0.5) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const a = await connectAs(stack, alice);
    try {
      await upstream.stopHydra();
      let down;
      try {
        down = await call(a.client, 'upstream_me');
      } finally {
        await upstream.startHydraAgain();
      }
      expect(down.isError).toBe(true);
      expect(down.text).toBe('upstream_me failed: Upstream cannot be reached just now; try again in a moment');
      expect(logged('refresh failed; connection kept', alice.sub)).toEqual([
        expect.objectContaining({ level: 'warn', provider: 'upstream', kind: 'unavailable', reason: expect.stringMatching(/^refresh failed: (connection refused \(ECONNREFUSED\)|network error)/) }),
      ]);
      // Kept exactly as it was: no reconnect mark, the same sealed credential.
      expect(rowsOf(alice.sub)).toEqual([before]);
      // Back up: the same client's next call refreshes and works, without being asked to connect.
      const up = await call(a.client, 'upstream_me');
      expect(up.isError, up.text).toBe(false);
      expect(up.value).toMatchObject({ sub: 'alice-upstream' });
      const [after] = rowsOf(alice.sub);
      expect(after).toMatchObject({ status: 'active' });
      expect(after!.sealed).not.toBe(before!.sealed);
    } finally {
      await a.close();
    }
  });

  it('9. tampered ciphertext: the tool asks to connect again (connection_required), never a 500, no token in the logs', async () => {
    const browser = new Browser();
    const done = await browser.open((await untilCallback(browser, dave, 'dave-upstream')).href);
    expect(done.text()).toContain('Upstream connected');
    const [row] = rowsOf(dave.sub);
    // The test knows the key: open the row to learn the tokens that must never be logged.
    const sealer = createSealer(parseConnectionKeys(`k1:${K1}`));
    const credential = await sealer.open(row!.sealed, { sub: dave.sub, provider: 'upstream' });
    expect(credential.refreshToken).toBeTruthy();
    // Flip one bit in the middle of the GCM ciphertext (the JWE's fourth part).
    const parts = row!.sealed.split('.');
    const bytes = Buffer.from(parts[3]!, 'base64url');
    const mid = bytes.length >> 1;
    bytes[mid] = bytes[mid]! ^ 0x01;
    parts[3] = bytes.toString('base64url');
    const tampered = parts.join('.');
    withDb((db) => db.prepare('UPDATE connections SET sealed = ? WHERE sub = ? AND provider = ?').run(tampered, dave.sub, 'upstream'));

    const d = await connectAs(stack, dave);
    try {
      const r = await call(d.client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(
        new RegExp(`^connection_required: upstream_me lost access to your Upstream account \\(the grant was revoked or expired\\)\\. Open ${stack.baseUrl}/account/connections/upstream/connect\\?e=\\S+ in your browser, connect Upstream, then call upstream_me again\\.$`),
      );
      // Asked again on the next call too, not a crash.
      expect((await call(d.client, 'upstream_me')).text).toMatch(/^connection_required: /);
    } finally {
      await d.close();
    }
    // Marked, the ciphertext left as found (for an operator to look at), the account page says what to do.
    expect(rowsOf(dave.sub)).toEqual([expect.objectContaining({ status: 'needs_reconnect', sealed: tampered })]);
    expect((await accountPage(browser, dave)).text()).toContain('Upstream access lost: connect again');

    expect(unopenable(dave.sub)).toEqual([expect.objectContaining({ level: 'error', provider: 'upstream', reason: 'tampered' })]);
    expect(failures()).toEqual([]);
    const all = stack.logs.join('\n');
    const secrets = [credential.accessToken, credential.refreshToken!, ...seenTokens];
    for (const s of secrets) expect(all.includes(s), `an upstream token of length ${s.length} reached the logs`).toBe(false);
    // Nor any other token or code of either Hydra (opaque ones carry these prefixes).
    expect(all).not.toMatch(/ory_(at|rt|ac)_/);
  });

  it('11. a connect link opened by another signed-in person, or with a tampered `e`: 403 "This link is not for you"; nothing connected', async () => {
    const b = await connectAs(stack, bob);
    let link: string;
    try {
      const r = await call(b.client, 'upstream_me');
      link = /Open (\S+) in your browser/.exec(r.text)![1]!;
    } finally {
      await b.close();
    }
    expect(link).toMatch(/\/account\/connections\/upstream\/connect\?e=[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{32}$/);
    const aliceRowBefore = rowsOf(alice.sub);

    // Alice, signed in, opens the link made for Bob.
    const alicesBrowser = new Browser();
    await accountPage(alicesBrowser, alice);
    const forAlice = await alicesBrowser.open(link);
    expect(forAlice.status).toBe(403);
    expect(forAlice.text()).toContain('This link is not for you');
    expect(forAlice.text()).toContain('Nothing was connected.');
    expect(forAlice.doc.querySelectorAll('form')).toHaveLength(0);

    // Bob opens his own link with its MAC altered.
    const bobsBrowser = new Browser();
    await accountPage(bobsBrowser, bob);
    const last = link.at(-1) === 'A' ? 'B' : 'A';
    const tampered = await bobsBrowser.open(link.slice(0, -1) + last);
    expect(tampered.status).toBe(403);
    expect(tampered.text()).toContain('This link is not for you');
    // The untouched link is his: the confirm page.
    const his = await bobsBrowser.open(link);
    expect(his.status).toBe(200);
    expect(his.text()).toContain('An app you use asked to act on your Upstream account');

    await expectNothingConnected(bob, bobsBrowser);
    expect(rowsOf(alice.sub)).toEqual(aliceRowBefore);
  });

  it('12. account page forms: disconnect without a CSRF token → 400, connect for an unknown provider → 404; nothing changed', async () => {
    const browser = new Browser();
    const page = await accountPage(browser, alice);
    expect(page.text()).toContain('Upstream connected');
    const before = rowsOf(alice.sub);
    const post = (path: string, form: Record<string, string>) => browser.request('POST', `${stack.baseUrl}${path}`, new URLSearchParams(form));

    const noCsrf = await post('/account/connections/upstream/disconnect', {});
    expect(noCsrf.status).toBe(400);
    expect(noCsrf.text()).toContain('The form has expired or did not come from this site.');
    const wrongCsrf = await post('/account/connections/upstream/disconnect', { csrf: randomBytes(24).toString('base64url') });
    expect(wrongCsrf.status).toBe(400);
    expect(wrongCsrf.text()).toContain('The form has expired or did not come from this site.');

    // A real CSRF token of this session (the Disconnect form's), sent to a provider that is not configured.
    const csrf = page.doc.querySelector('form[action="/account/connections/upstream/disconnect"] input[name="csrf"]')!.getAttribute('value')!;
    const unknown = await post('/account/connections/nosuch/connect', { csrf });
    expect(unknown.status).toBe(404);
    expect(unknown.text()).toContain('No such service is configured here.');
    const unknownOut = await post('/account/connections/nosuch/disconnect', { csrf });
    expect(unknownOut.status).toBe(404);
    expect((await browser.open(`${stack.baseUrl}/account/connections/nosuch/connect`)).status).toBe(404);

    expect(rowsOf(alice.sub)).toEqual(before);
    expect((await accountPage(browser, alice)).text()).toContain('Upstream connected');
  });

  it('10. config refusals: CONNECTIONS_FILE without CONNECTION_KEYS, or a bad CONNECTION_KEYS, stops the start naming the variable', async () => {
    const { CONNECTION_KEYS: _, ...withoutKeys } = stack.env;
    await expect(startServer(withoutKeys)).rejects.toThrow(/CONNECTION_KEYS: must be set when CONNECTIONS_FILE is/);
    await expect(startServer({ ...stack.env, CONNECTION_KEYS: 'k1:tooshort' })).rejects.toThrow(/CONNECTION_KEYS: entry 1 \("k1"\): the key must be 32 bytes, found \d+/);
    await expect(startServer({ ...stack.env, CONNECTION_KEYS: `k2:${randomBytes(32).toString('base64url')},` })).rejects.toThrow(/CONNECTION_KEYS: entry 2 is empty/);
    await expect(startServer({ ...stack.env, CONNECTION_KEYS: 'k1' })).rejects.toThrow(/CONNECTION_KEYS: entry 1: expected "<key id>:<32 bytes base64url>"/);
  });

  it('10. missing key: a server whose CONNECTION_KEYS lacks the key the row was sealed with asks the person to connect again; the row is kept as it was (the key put back restores it)', async () => {
    const [before] = rowsOf(alice.sub);
    expect(before).toMatchObject({ status: 'active', key_id: 'k1' });
    // Another server process on the same database and port, with only a new key k2.
    await replaceServer(`k2:${randomBytes(32).toString('base64url')}`);
    const a = await connectAs(stack, alice);
    try {
      const r = await call(a.client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^connection_required: upstream_me lost access to your Upstream account \(the grant was revoked or expired\)\. Open \S+ in your browser/);
    } finally {
      await a.close();
    }
    expect(rowsOf(alice.sub)).toEqual([before]);
    expect(unopenable(alice.sub)).toEqual([expect.objectContaining({ level: 'error', provider: 'upstream', reason: 'unknown_key' })]);
    expect(failures()).toEqual([]);
    expect(stack.logs.join('\n')).not.toMatch(/ory_(at|rt|ac)_/);
  });

  it('10. wrong key: the same key id with other bytes asks the person to connect again, never a 500', async () => {
    // Carol connects on the k2 server; then k2's bytes are replaced (an operator's paste error).
    const browser = new Browser();
    const done = await browser.open((await untilCallback(browser, carol, 'carol-upstream')).href);
    expect(done.text()).toContain('Upstream connected');
    const [before] = rowsOf(carol.sub);
    expect(before).toMatchObject({ status: 'active', key_id: 'k2' });
    await replaceServer(`k2:${randomBytes(32).toString('base64url')},k1:${K1}`);
    const c = await connectAs(stack, carol);
    try {
      const r = await call(c.client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(/^connection_required: upstream_me lost access to your Upstream account \(the grant was revoked or expired\)\. Open \S+ in your browser/);
    } finally {
      await c.close();
    }
    expect(rowsOf(carol.sub)).toEqual([{ ...before, status: 'needs_reconnect', updated_at: expect.any(Number) }]);
    expect(unopenable(carol.sub)).toEqual([expect.objectContaining({ level: 'error', provider: 'upstream', reason: 'tampered' })]);
    expect(failures()).toEqual([]);
    expect(stack.logs.join('\n')).not.toMatch(/ory_(at|rt|ac)_/);
  });

  it('issue 26 #13: a connect attempt whose sealed verifier cannot be opened at the callback (its key dropped, or replaced by other bytes) gets a 400 "start again" page, never a 500; starting again works', async () => {
    const erin = await stack.addUser('erin@example.com', 'quiet orchard 2026');
    const [ka, kb] = [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')];
    const browser = new Browser();
    // One SESSION_SECRET for both processes, so the account session outlives the restart (as on replicas).
    const env = { SESSION_SECRET: randomBytes(32).toString('base64url') };
    for (const [startedWith, finishedWith] of [
      // The key the attempt was sealed with is dropped while the person is at the provider.
      [`ka:${ka}`, `kb:${kb}`],
      // The same key id with other bytes (an operator's paste error).
      [`kb:${kb}`, `kb:${randomBytes(32).toString('base64url')}`],
    ]) {
      await replaceServer(startedWith!, env);
      const callback = await untilCallback(browser, erin, 'erin-upstream');
      expect(attemptsOf(erin.sub)).toBe(1);
      await replaceServer(finishedWith!, env);
      const page = await browser.open(callback.href);
      expect(page.status, page.text()).toBe(400);
      expect(page.text()).toContain('This connect link has expired. Nothing was connected; start again from your account page.');
      // The attempt is spent, nothing was stored, nothing failed.
      expect(attemptsOf(erin.sub)).toBe(0);
      expect(rowsOf(erin.sub)).toEqual([]);
      expect(failures()).toEqual([]);
    }
    const again = await browser.open((await untilCallback(browser, erin, 'erin-upstream')).href);
    expect(again.status).toBe(200);
    expect(again.text()).toContain('Upstream connected');
    expect(rowsOf(erin.sub)).toEqual([expect.objectContaining({ status: 'active', key_id: 'kb' })]);
  });

  it('issue 30 #5: a client secret the provider no longer accepts: the code exchange, the refresh and the revocation are each refused with invalid_client, and each log line says so (oauth_error, reason) with no token, code or secret in the logs', async () => {
    const frank = await stack.addUser('frank@example.com', 'linen compass 2026');
    const browser = new Browser();
    const env = { SESSION_SECRET: randomBytes(32).toString('base64url') };
    // Frank connects while the catalogue's secret is right.
    await replaceServer(`k1:${K1}`, env);
    const done = await browser.open((await untilCallback(browser, frank, 'frank-upstream')).href);
    expect(done.text()).toContain('Upstream connected');
    const [row] = rowsOf(frank.sub);
    const credential = await createSealer(parseConnectionKeys(`k1:${K1}`)).open(row!.sealed, { sub: frank.sub, provider: 'upstream' });

    // The operator's catalogue now holds a secret the provider does not know (as after a rotation done on one side only).
    const catalogue = JSON.parse(await readFile(stack.env.CONNECTIONS_FILE!, 'utf8')) as { providers: Record<string, { clientSecret: string }> };
    const rightSecret = catalogue.providers.upstream!.clientSecret;
    const wrongSecret = `wrong-${randomBytes(24).toString('base64url')}`;
    catalogue.providers.upstream!.clientSecret = wrongSecret;
    const wrongFile = join(dirname(stack.env.CONNECTIONS_FILE!), 'connections-wrong-secret.json');
    await writeFile(wrongFile, JSON.stringify(catalogue));
    await replaceServer(`k1:${K1}`, { ...env, CONNECTIONS_FILE: wrongFile });
    const invalidClient = (step: string) =>
      expect.objectContaining({ level: 'warn', provider: 'upstream', kind: 'refused', oauth_error: 'invalid_client', reason: expect.stringMatching(new RegExp(`^${step.replace(/[()]/g, '\\$&')}: the provider refused with invalid_client \\(HTTP 401\\)`)) });

    // Refresh: past the access token's expiry, the tool call must refresh.
    const wait = (Number(row!.expires_at) + 0.5) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const f = await connectAs(stack, frank);
    try {
      const r = await call(f.client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toBe('upstream_me failed: Upstream cannot be reached just now; try again in a moment');
    } finally {
      await f.close();
    }
    expect(logged('refresh failed; connection kept', frank.sub)).toEqual([invalidClient('refresh')]);
    expect(rowsOf(frank.sub)).toEqual([row]);

    // Code exchange: Frank connects again; the provider refuses our client.
    const callback = await untilCallback(browser, frank, 'frank-upstream');
    const page = await browser.open(callback.href);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('Upstream refused the connection (invalid_client). Start again from your account page.');
    expect(logged('connect: code exchange failed', frank.sub)).toEqual([invalidClient('code exchange')]);

    // Revocation: Frank disconnects; the provider cannot be told, the connection goes here anyway.
    const after = await (await accountPage(browser, frank)).submit('Disconnect');
    expect(after.url.pathname + after.url.search).toBe('/account?done=disconnected-not-revoked');
    expect(logged('disconnect: revocation at the provider failed; the connection is deleted here', frank.sub)).toEqual([invalidClient('revocation (refresh_token)')]);
    expect(rowsOf(frank.sub)).toEqual([]);

    expect(failures()).toEqual([]);
    const all = stack.logs.join('\n');
    const secrets = [rightSecret, wrongSecret, callback.searchParams.get('code')!, credential.accessToken, credential.refreshToken!, ...seenTokens];
    for (const secret of secrets) expect(all.includes(secret), `a secret of length ${secret.length} reached the logs`).toBe(false);
    expect(all).not.toMatch(/ory_(at|rt|ac)_/);
    // No line about a provider call has its reason hidden under a redacted name.
    for (const l of stack.logs.map((x) => JSON.parse(x) as Record<string, unknown>).filter((x) => x.sub === frank.sub && x.level === 'warn')) expect(l).not.toHaveProperty('code');
  });
});
