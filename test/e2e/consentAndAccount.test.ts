import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Browser } from '../support/browser.js';
import { type Connected, connectAs } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { type Stack, startStack, type TestUser } from './stack.js';

/** Start an authorization as an MCP client would; returns the URL the person is sent to. */
async function authorizationUrlFor(stack: Stack, oauth: TestOAuthClient): Promise<URL> {
  const transport = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
  await expect(new Client({ name: 'e2e', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
  return oauth.authorizationUrl!;
}

async function statusWith(stack: Stack, token: string) {
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });
  return res.status;
}

describe('sign-in, consent, account and logout against the real Ory Hydra', () => {
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;
  const REDIRECT = 'http://127.0.0.1:53682/callback';
  const atClient = (u: URL) => u.href.startsWith(REDIRECT);

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    alice = await stack.addUser('carol@example.com', 'carol password 1');
    bob = await stack.addUser('dan@example.com', 'dan password 22');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('Deny sends the client access_denied with its state (RFC 6749 §4.1.2.1)', async () => {
    const oauth = new TestOAuthClient(REDIRECT);
    const url = await authorizationUrlFor(stack, oauth);
    const browser = new Browser();
    const login = await browser.open(url.href);
    const consent = await login.submit('Sign in', { fill: { Email: alice.email, Password: alice.password } });
    const back = await consent.submit('Deny', {}, atClient);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    expect(back.url.searchParams.get('state')).toBe(url.searchParams.get('state'));
    expect(back.url.searchParams.get('code')).toBeNull();
  });

  it('a wrong password shows the error on the page and nothing else happens', async () => {
    const oauth = new TestOAuthClient(REDIRECT);
    const login = await new Browser().open((await authorizationUrlFor(stack, oauth)).href);
    const again = await login.submit('Sign in', { fill: { Email: alice.email, Password: 'not the password' } });
    expect(again.status).toBe(401);
    expect(again.url.pathname).toBe('/login');
    expect(again.text()).toContain('Wrong email or password.');
  });

  it('"keep me signed in" and "remember this decision": the next authorization asks nothing', async () => {
    const first = await connectAs(stack, alice, { remember: true });
    await first.close();
    const again = new TestOAuthClient(REDIRECT);
    again.saveClientInformation(first.oauth.clientInformation()!);
    const url = await authorizationUrlFor(stack, again);
    const seen = first.browser.history.length;
    const back = await first.browser.open(url.href, atClient);
    expect(back.url.searchParams.get('code')).toBeTruthy();
    // Our pages were passed through (Hydra's skip) without a form being shown or posted.
    const visited = first.browser.history.slice(seen);
    expect(visited.filter((line) => line.startsWith('POST'))).toEqual([]);
    expect(visited.some((line) => line.includes('/login?'))).toBe(true);
  });

  /** The same app authorized again in the same browser: Hydra remembers sign-in and consent (skip); the SDK exchanges the code. */
  async function authorizeAgain(first: Connected) {
    const again = new TestOAuthClient(REDIRECT);
    again.saveClientInformation(first.oauth.clientInformation()!);
    const transport = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: again });
    await expect(new Client({ name: 'e2e', version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    // The client does not ask for offline_access (SEP-2207): our consent policy offers it.
    expect(again.authorizationUrl!.searchParams.get('scope')?.split(' ')).not.toContain('offline_access');
    const seen = first.browser.history.length;
    const back = await first.browser.open(again.authorizationUrl!.href, atClient);
    const visited = first.browser.history.slice(seen);
    expect(back.url.searchParams.get('code'), `straight back with a code:\n${visited.join('\n')}`).toBeTruthy();
    expect(visited.filter((line) => line.startsWith('POST')), 'no page was shown: the consent was remembered').toEqual([]);
    await transport.finishAuth(back.url.searchParams.get('code')!);
    return again.tokens()!;
  }

  it('issue 26 #3: "Stay connected" unticked and the decision remembered: the next authorization gets no refresh token', async () => {
    const erin = await stack.addUser('erin@example.com', 'erin password 333');
    const first = await connectAs(stack, erin, { remember: true, uncheck: ['offline_access'] });
    await first.close();
    expect(first.oauth.tokens()!.refresh_token).toBeUndefined();
    const tokens = await authorizeAgain(first);
    expect(tokens.scope?.split(' ')).not.toContain('offline_access');
    expect(tokens.refresh_token, 'a remembered consent grants no more than the person granted').toBeUndefined();
  });

  it('issue 26 #3: "Stay connected" ticked and the decision remembered: the next authorization still gets a refresh token', async () => {
    const fred = await stack.addUser('fred@example.com', 'fred password 4444');
    const first = await connectAs(stack, fred, { remember: true });
    await first.close();
    expect(first.oauth.tokens()!.refresh_token).toBeTruthy();
    const tokens = await authorizeAgain(first);
    expect(tokens.scope?.split(' ')).toContain('offline_access');
    expect(tokens.refresh_token).toBeTruthy();
  });

  it('withdrawing consent on /account revokes that app’s tokens; each person sees only their own apps', async () => {
    const { oauth, close } = await connectAs(stack, bob);
    await close();
    const { access_token } = oauth.tokens()!;
    expect(await statusWith(stack, access_token)).toBe(200);

    const browser = new Browser();
    const signIn = await browser.open(`${stack.baseUrl}/account`);
    const account = await signIn.submit('Sign in', { fill: { Email: bob.email, Password: bob.password } });
    expect(account.text()).toContain(`Signed in as ${bob.email}`);
    expect(account.text()).toContain('hydra-mcp e2e');

    // Alice's apps are not on Bob's page, and Alice's page does not show Bob's.
    const aliceBrowser = new Browser();
    const alicePage = await (await aliceBrowser.open(`${stack.baseUrl}/account`)).submit('Sign in', {
      fill: { Email: alice.email, Password: alice.password },
    });
    const aliceApps = alicePage.doc.querySelectorAll('ul.grants li').length;

    const after = await account.submit('Remove access');
    expect(after.text()).toContain('Access removed.');
    expect(after.text()).toContain('No app has access to your account.');
    expect(await statusWith(stack, access_token)).toBe(401);
    const refresh = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oauth.tokens()!.refresh_token!, client_id: oauth.clientInformation()!.client_id }),
    });
    expect(refresh.status).toBe(400);

    const aliceAgain = await aliceBrowser.open(`${stack.baseUrl}/account`);
    expect(aliceAgain.doc.querySelectorAll('ul.grants li').length, "Bob's removal left Alice's apps alone").toBe(aliceApps);
  });

  it('a client registered with http://localhost/callback may come back on any port (RFC 8252 §7.3)', async () => {
    // Claude Code registers a port-less localhost URI and listens on a random port.
    const oauth = new TestOAuthClient('http://localhost:54999/callback', { redirect_uris: ['http://localhost/callback'] });
    const { client, close } = await connectAs(stack, alice, { oauth });
    try {
      expect((await client.callTool({ name: 'whoami', arguments: {} })).isError).toBeFalsy();
    } finally {
      await close();
    }
  });

  it('logout asks for confirmation, then ends the remembered sign-in', async () => {
    const first = await connectAs(stack, bob, { remember: true });
    await first.close();
    const confirm = await first.browser.open(`${stack.hydra.publicUrl}/oauth2/sessions/logout`);
    expect(confirm.url.pathname).toBe('/logout');
    expect(confirm.text()).toContain('Sign out?');
    await confirm.submit('Sign out');
    // The browser is no longer remembered: a new authorization asks for the password.
    const again = new TestOAuthClient(REDIRECT);
    again.saveClientInformation(first.oauth.clientInformation()!);
    const page = await first.browser.open((await authorizationUrlFor(stack, again)).href, atClient);
    expect(page.url.pathname).toBe('/login');
  });
});
