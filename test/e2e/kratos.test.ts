import { randomUUID } from 'node:crypto';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { createKratos, type Kratos } from '../../src/kratos/index.js';
import { kratosPublicUrls } from '../../src/kratos/endpoints.js';
import { kratosFlowPage } from '../../src/login/kratosPages.js';
import { Browser, type Page } from './browser.js';
import { call } from './flow.js';
import { TestOAuthClient } from './oauthClient.js';
import { type Stack, startStack } from './stack.js';

/**
 * Issue 15, part 1: IDENTITY=kratos for sign-in, end to end against the real
 * Ory Kratos and the real Ory Hydra (both built from their Go modules), driven
 * by the official MCP SDK client. Hydra sends the person to our /login, which
 * asks Kratos's whoami; without a session the browser goes through Kratos's
 * own browser flow, rendered by our /kratos/login and /kratos/registration
 * pages and posted straight to Kratos (kratos/README.md, "Sign-in with Kratos").
 */

interface Person {
  email: string;
  password: string;
  name: string;
}

const ADA: Person = { email: 'ada@example.com', password: 'analytical engine 1843', name: 'Ada Lovelace' };
// Kratos's own texts (kratos/README.md, "Facts relied on").
const INVALID_CREDENTIALS = 'The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.';
const TOO_SHORT = 'The password must be at least 8 characters long, but got 5.';

describe('IDENTITY=kratos configuration', () => {
  it.each(['KRATOS_PUBLIC_URL', 'KRATOS_ADMIN_URL'])('refuses IDENTITY=kratos without %s, naming it', (missing) => {
    const env: Record<string, string> = { IDENTITY: 'kratos', KRATOS_PUBLIC_URL: 'http://127.0.0.1:4433', KRATOS_ADMIN_URL: 'http://127.0.0.1:4434' };
    delete env[missing];
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(`${missing}: must be set when IDENTITY=kratos`);
  });

  it('defaults to the built-in users, and reads both Kratos URLs when chosen', () => {
    expect(loadConfig({}).identity).toEqual({ kind: 'builtin' });
    const c = loadConfig({ IDENTITY: 'kratos', KRATOS_PUBLIC_URL: 'https://id.example.com/', KRATOS_ADMIN_URL: 'http://kratos:4434' });
    expect(c.identity).toEqual({ kind: 'kratos', publicUrl: new URL('https://id.example.com'), adminUrl: new URL('http://kratos:4434') });
    expect(() => loadConfig({ IDENTITY: 'ldap' })).toThrow('IDENTITY');
  });
});

describe('kratosFlowPage (no Kratos: a hand-written flow with hostile values)', () => {
  it('escapes every value, keeps only http(s) links, renders no script or image node, and posts to the flow’s action', () => {
    const page = kratosFlowPage({
      kind: 'login',
      otherFlowUrl: 'https://id.example/self-service/registration/browser',
      flow: {
        id: 'f',
        type: 'browser',
        ui: {
          action: 'https://id.example/self-service/login?flow=f&x="><script>',
          method: 'post',
          messages: [{ id: 1, type: 'error', text: '<img src=x onerror=alert(1)>' }],
          nodes: [
            { type: 'input', group: 'default', attributes: { name: 'csrf_token', type: 'hidden', value: '"><b>' }, messages: [], meta: {} },
            { type: 'input', group: 'default', attributes: { name: 'identifier', type: 'text', value: '<i>me</i>' }, messages: [{ id: 2, type: 'error', text: '<u>bad</u>' }], meta: { label: { id: 3, type: 'info', text: 'E<mail>' } } },
            { type: 'a', group: 'default', attributes: { href: 'javascript:alert(1)', title: { id: 4, type: 'info', text: 'click' } }, messages: [], meta: {} },
            { type: 'script', group: 'webauthn', attributes: {}, messages: [], meta: {} },
            { type: 'img', group: 'totp', attributes: {}, messages: [], meta: {} },
            { type: 'input', group: 'password', attributes: { name: 'method', type: 'submit', value: 'password' }, messages: [], meta: { label: { id: 5, type: 'info', text: 'Go' } } },
          ],
        },
      },
    });
    expect(page).not.toMatch(/<(script|img|b|i|u)[\s>]/);
    expect(page).not.toContain('javascript:');
    expect(page).toContain('action="https://id.example/self-service/login?flow=f&amp;x=&quot;&gt;&lt;script&gt;"');
    expect(page).toContain('<p class="error" role="alert" data-kratos-id="1">&lt;img src=x onerror=alert(1)&gt;</p>');
    expect(page).toContain('aria-invalid="true"');
    expect(page).toContain('<button type="submit" name="method" value="password" >Go</button>');
  });
});

describe('sign-in with the real Ory Kratos and Hydra (IDENTITY=kratos)', () => {
  let stack: Stack;
  let kratos: Kratos;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', identity: 'kratos', captureLogs: true });
    kratos = createKratos({ publicUrl: new URL(stack.kratos!.publicUrl), adminUrl: new URL(stack.kratos!.adminUrl) });
    console.log(`Ory Kratos ${stack.kratos!.version} at ${stack.kratos!.publicUrl}, Ory Hydra ${stack.hydra.version}`);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** For ctx.onTestFailed: the three logs next to the failure. */
  const dumpLogs = () => {
    console.error(`--- Kratos ---\n${stack.kratosLog.slice(-40).join('\n')}\n--- server ---\n${stack.logs.slice(-40).join('\n')}`);
  };

  /** The SDK client discovers, registers and asks for authorization; the person's browser takes it from there. */
  async function startAuthorization() {
    const oauth = new TestOAuthClient('http://127.0.0.1:53682/callback');
    const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
    await expect(new Client({ name: 'e2e-kratos', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(oauth.authorizationUrl).toBeDefined();
    const atClient = (u: URL) => u.href.startsWith(oauth.redirectUrl);
    return { oauth, first, atClient };
  }

  /** With the code the browser came back with, the SDK finishes (PKCE) and connects. */
  async function finish(started: Awaited<ReturnType<typeof startAuthorization>>, back: Page) {
    expect(started.atClient(back.url), `back at the client; at ${back.url.href}`).toBe(true);
    await started.first.finishAuth(back.url.searchParams.get('code')!);
    const client = new Client({ name: 'e2e-kratos', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: started.oauth }));
    return client;
  }

  /** The link a person follows, by its text. */
  function follow(browser: Browser, page: Page, text: string, stopAt?: (u: URL) => boolean) {
    const a = page.doc.querySelectorAll('a').find((x) => x.textContent.trim() === text);
    if (!a) throw new Error(`no "${text}" link on ${page.url.href}:\n${page.text()}`);
    return browser.open(new URL(a.getAttribute('href')!, page.url).href, stopAt);
  }

  /** The person's part with Kratos: our Kratos page (register or sign in) unless Kratos knows them, then Allow. */
  async function personSignsIn(browser: Browser, started: Awaited<ReturnType<typeof startAuthorization>>, person: Person, how: 'register' | 'sign-in' | 'session') {
    const { oauth, atClient } = started;
    const mark = browser.history.length;
    let page = await browser.open(oauth.authorizationUrl!.href, atClient);
    if (how === 'register') {
      expect(page.url.pathname, page.text()).toBe('/kratos/login');
      page = await follow(browser, page, 'Create an account', atClient);
      expect(page.url.pathname, page.text()).toBe('/kratos/registration');
      page = await page.submit('Sign up', { fill: { Email: person.email, Name: person.name, Password: person.password } }, atClient);
    } else if (how === 'sign-in') {
      expect(page.url.pathname, page.text()).toBe('/kratos/login');
      page = await page.submit('Sign in with password', { fill: { Email: person.email, Password: person.password } }, atClient);
    }
    expect(page.url.pathname, `${page.url.href}\n${page.text()}`).toBe('/consent');
    expect(page.text()).toContain(person.email); // the consent page names the Kratos identity's email
    const back = await page.submit('Allow', {}, atClient);
    return { back, visited: browser.history.slice(mark) };
  }

  it('registers on our page (Kratos’s registration flow), completes OAuth with the SDK client, and tools see the Kratos identity id', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const started = await startAuthorization();
    const { back, visited } = await personSignsIn(browser, started, ADA, 'register');
    // The form was posted to Kratos itself, never to us.
    expect(visited.some((v) => v.startsWith(`POST ${stack.kratos!.publicUrl}/`))).toBe(true);
    expect(visited.some((v) => v.startsWith(`POST ${stack.baseUrl}/kratos`))).toBe(false);
    const client = await finish(started, back);
    try {
      const me = await call(client, 'whoami');
      expect(me.isError).toBe(false);
      const [identity] = (await kratos.admin.listIdentities({ identifier: ADA.email })).identities;
      expect(identity?.traits).toEqual({ email: ADA.email, name: ADA.name });
      expect(me.value.sub).toBe(identity!.id);
    } finally {
      await client.close();
    }

    // Same browser, a second authorization: Kratos's session answers, no form is shown.
    const again = await startAuthorization();
    const second = await personSignsIn(browser, again, ADA, 'session');
    expect(second.visited.filter((v) => v.includes('/kratos/') || v.includes(stack.kratos!.publicUrl))).toEqual([]);
    const client2 = await finish(again, second.back);
    try {
      expect((await call(client2, 'whoami')).value.sub).toBe((await kratos.admin.listIdentities({ identifier: ADA.email })).identities[0]!.id);
    } finally {
      await client2.close();
    }
  });

  it('signs in on our page with the Kratos password in a new browser', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const started = await startAuthorization();
    const { back } = await personSignsIn(new Browser(), started, ADA, 'sign-in');
    const client = await finish(started, back);
    try {
      expect((await call(client, 'whoami')).value.sub).toBe((await kratos.admin.listIdentities({ identifier: ADA.email })).identities[0]!.id);
    } finally {
      await client.close();
    }
  });

  it('a wrong password: Kratos’s own message on our page, the email kept, nothing granted', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const { oauth, atClient } = await startAuthorization();
    const form = await browser.open(oauth.authorizationUrl!.href, atClient);
    expect(form.url.pathname).toBe('/kratos/login');
    const page = await form.submit('Sign in with password', { fill: { Email: ADA.email, Password: 'not the password at all' } }, atClient);
    expect(page.url.pathname).toBe('/kratos/login');
    expect(page.status).toBe(200);
    expect(page.doc.querySelector('[role=alert]')?.textContent.trim()).toBe(INVALID_CREDENTIALS);
    expect(page.fieldByLabel('Email').getAttribute('value')).toBe(ADA.email);
    expect(browser.history.some((v) => v.includes('/consent'))).toBe(false);
  });

  it('a weak password at registration: Kratos’s policy message under the field; no identity; what was typed comes back escaped', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const { oauth, atClient } = await startAuthorization();
    const login = await browser.open(oauth.authorizationUrl!.href, atClient);
    const form = await follow(browser, login, 'Create an account', atClient);
    const name = '<b>Grace</b> "Hopper"';
    const page = await form.submit('Sign up', { fill: { Email: 'grace@example.com', Name: name, Password: 'short' } }, atClient);
    expect(page.url.pathname).toBe('/kratos/registration');
    const field = page.fieldByLabel('Password');
    expect(field.getAttribute('aria-invalid')).toBe('true');
    expect(page.doc.querySelector(`#${field.getAttribute('aria-describedby')!.split(' ')[0]}`)?.textContent.trim()).toBe(TOO_SHORT);
    expect(page.html).not.toContain('<b>Grace</b>');
    expect(page.fieldByLabel('Name').getAttribute('value')).toBe(name);
    expect((await kratos.admin.listIdentities({ identifier: 'grace@example.com' })).identities).toEqual([]);
  });

  it('a duplicate registration: Kratos’s message on our page, the first identity untouched', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const before = (await kratos.admin.listIdentities({ identifier: ADA.email })).identities;
    const browser = new Browser();
    const { oauth, atClient } = await startAuthorization();
    const login = await browser.open(oauth.authorizationUrl!.href, atClient);
    const form = await follow(browser, login, 'Create an account', atClient);
    const page = await form.submit('Sign up', { fill: { Email: ADA.email, Name: 'Impostor', Password: 'another long passphrase 43' } }, atClient);
    expect(page.url.pathname).toBe('/kratos/registration');
    expect(page.text()).toMatch(/exists already/);
    expect((await kratos.admin.listIdentities({ identifier: ADA.email })).identities).toEqual(before);
  });

  it('a forged flow id: our error page with Kratos’s status and message', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const forged = randomUUID();
    const direct = await fetch(kratosPublicUrls(stack.kratos!.publicUrl).flow('login', forged), { headers: { accept: 'application/json' } });
    const { error } = (await direct.json()) as { error: { message: string } };
    const page = await new Browser().open(`${stack.baseUrl}/kratos/login?flow=${forged}`);
    expect(page.status).toBe(direct.status);
    expect([400, 404]).toContain(page.status);
    expect(page.text()).toContain(error.message);
    expect((await new Browser().open(`${stack.baseUrl}/kratos/error?id=${forged}`)).status).toBe(404);
  });

  it('a flow started in another browser: refused with Kratos’s message (its CSRF cookie is missing)', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const { oauth, atClient } = await startAuthorization();
    const mine = await new Browser().open(oauth.authorizationUrl!.href, atClient);
    expect(mine.url.pathname).toBe('/kratos/login');
    // What Kratos itself answers a caller without that browser's cookies.
    const flowId = mine.url.searchParams.get('flow')!;
    const direct = await fetch(kratosPublicUrls(stack.kratos!.publicUrl).flow('login', flowId), { headers: { accept: 'application/json' } });
    const { error } = (await direct.json()) as { error: { id: string; message: string } };
    expect([direct.status, error.id]).toEqual([403, 'security_csrf_violation']);
    const theirs = await new Browser().open(mine.url.href);
    expect(theirs.status).toBe(403);
    expect(theirs.text()).toContain(error.message);
    expect(theirs.doc.querySelector('form')).toBeNull();
  });

  it('an error Kratos stored (a return_to it does not allow) is shown on /kratos/error with its status and message', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const page = await browser.open(kratos.public.browserFlowUrl('login', 'https://evil.example/').href);
    expect(page.url.pathname).toBe('/kratos/error');
    const { error } = await kratos.public.getError(page.url.searchParams.get('id')!);
    expect(page.status).toBe(error.code);
    expect(page.text()).toContain(error.message);
    expect(page.text()).toContain(error.reason);
    expect(page.doc.querySelector('form')).toBeNull();
  });

  it('back from Kratos without a Kratos session (its cookie not reaching us): an error page, not a redirect loop', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const { oauth, atClient } = await startAuthorization();
    const login = await browser.open(oauth.authorizationUrl!.href, (u) => atClient(u) || u.pathname === '/login');
    const returned = new URL(login.url);
    returned.searchParams.set('kratos', 'returned');
    const page = await browser.open(returned.href, atClient);
    expect(page.status).toBe(502);
    expect(page.text()).toContain('cannot see that sign-in');
    expect(browser.history.some((v) => v.includes('/consent'))).toBe(false);
  });

  it('Kratos down: our pages answer 503 “Sign-in is unavailable just now”, and nothing is granted', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const { oauth, atClient } = await startAuthorization();
    const login = await browser.open(oauth.authorizationUrl!.href, atClient);
    expect(login.url.pathname).toBe('/kratos/login');
    await stack.kratos!.stop();
    const down = await browser.open(oauth.authorizationUrl!.href, atClient);
    expect(down.url.pathname).toBe('/login');
    expect(down.status).toBe(503);
    expect(down.text()).toContain('Sign-in is unavailable just now');
    const flowPage = await browser.open(login.url.href);
    expect(flowPage.status).toBe(503);
    const plain = await fetch(`${stack.baseUrl}/kratos/registration?flow=${randomUUID()}`);
    expect([plain.status, plain.headers.get('retry-after')]).toEqual([503, '5']);
    expect(await plain.text()).toContain('Sign-in is unavailable just now');
    expect(browser.history.some((v) => v.includes('/consent'))).toBe(false);
  });
});
