import { randomUUID } from 'node:crypto';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed } from '@modelcontextprotocol/sdk/shared/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { createKratos, type Kratos } from '../../src/kratos/index.js';
import { kratosPublicUrls } from '../../src/kratos/endpoints.js';
import { kratosFlowPage } from '../../src/signin/kratosPages.js';
import { createHydraAdmin } from '../../src/hydra/index.js';
import { openDatabase } from '../../src/store/database.js';
import { Browser, type Page } from '../support/browser.js';
import { call } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
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
const BARBARA: Person = { email: 'barbara@example.com', password: 'liskov substitution 1987', name: 'Barbara Liskov' };
const MARGARET: Person = { email: 'margaret@example.com', password: 'apollo guidance 1969', name: 'Margaret Hamilton' };
const ALAN: Person = { email: 'alan@example.com', password: 'entscheidungsproblem 1936', name: 'Alan Turing' };
const HEDY: Person = { email: 'hedy@example.com', password: 'spread spectrum 1942', name: 'Hedy Lamarr' };
const KATHERINE: Person = { email: 'katherine@example.com', password: 'orbital mechanics 1962', name: 'Katherine Johnson' };
const GRACE_H: Person = { email: 'hopper@example.com', password: 'first compiler 1952', name: 'Grace Hopper' };
const RADIA: Person = { email: 'radia@example.com', password: 'spanning tree 1985', name: 'Radia Perlman' };
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
    expect(c.identity).toEqual({ kind: 'kratos', publicUrl: new URL('https://id.example.com'), adminUrl: new URL('http://kratos:4434'), sweepSeconds: 60 });
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

  /** What the one app of these tests registered: like a real client, it registers once (and /register allows 20 an hour). */
  let registeredApp: OAuthClientInformationMixed | undefined;

  /** The SDK client discovers, registers (the first time) and asks for authorization; the person's browser takes it from there. */
  async function startAuthorization() {
    const oauth = new TestOAuthClient('http://127.0.0.1:53682/callback');
    if (registeredApp) oauth.saveClientInformation(registeredApp);
    const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
    await expect(new Client({ name: 'e2e-kratos', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(oauth.authorizationUrl).toBeDefined();
    registeredApp ??= oauth.clientInformation();
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

  /** A person who registers through the SDK client's authorization, with a browser that keeps Kratos's and Hydra's cookies. */
  async function registered(person: Person) {
    const browser = new Browser();
    const started = await startAuthorization();
    const { back } = await personSignsIn(browser, started, person, 'register');
    const client = await finish(started, back);
    const sub = (await call(client, 'whoami')).value.sub as string;
    return { browser, client, sub, oauth: started.oauth };
  }

  const whoamiStatus = async (browser: Browser) => (await browser.open(kratosPublicUrls(stack.kratos!.publicUrl).whoami.href)).status;

  it('logout (OIDC, through Hydra) ends Hydra’s and Kratos’s sessions: our page, then Kratos’s logout flow, then Hydra', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const { browser, client } = await registered(BARBARA);
    await client.close();
    expect(await whoamiStatus(browser)).toBe(200);
    // OP-initiated logout at Hydra: Hydra has a session (remembered with Kratos's), so it shows our logout page.
    const confirm = await browser.open(`${stack.hydra.publicUrl}/oauth2/sessions/logout`);
    expect(confirm.url.pathname, confirm.text()).toBe('/logout');
    const mark = browser.history.length;
    const done = await confirm.submit('Sign out');
    const path = browser.history.slice(mark);
    expect(path.some((v) => v.startsWith(`GET ${stack.kratos!.publicUrl}/self-service/logout?`)), path.join('\n')).toBe(true);
    expect(path.some((v) => v.startsWith(`GET ${stack.baseUrl}/logout/continue?`))).toBe(true);
    expect(done.status).toBeLessThan(400);
    // Kratos: no session. Hydra: a new authorization in the same browser asks for the password again.
    expect(await whoamiStatus(browser)).toBe(401);
    const { oauth, atClient } = await startAuthorization();
    const again = await browser.open(oauth.authorizationUrl!.href, atClient);
    expect(again.url.pathname, again.text()).toBe('/kratos/login');
  });

  it('a forged sign-out continuation is refused and ends nothing', async () => {
    const page = await new Browser().open(`${stack.baseUrl}/logout/continue?logout=${encodeURIComponent('logout-continue|abc.forged')}`);
    expect(page.status).toBe(400);
    expect(page.text()).toContain('This sign-out link is not valid.');
  });

  it('prompt=login: the password again although Kratos has a session; then the flow completes', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const browser = new Browser();
    const first = await startAuthorization();
    await personSignsIn(browser, first, ADA, 'sign-in');
    const started = await startAuthorization();
    const url = new URL(started.oauth.authorizationUrl!);
    url.searchParams.set('prompt', 'login');
    const mark = browser.history.length;
    const form = await browser.open(url.href, started.atClient);
    expect(form.url.pathname, browser.history.slice(mark).join('\n')).toBe('/kratos/login');
    // Kratos's refresh form: its own prompt, the password only (the identity is the session's).
    expect(form.text()).toContain('Please confirm this action by verifying that it is you.');
    const consent = await form.submit('Sign in', { fill: { Password: ADA.password } }, started.atClient);
    expect(consent.url.pathname, consent.text()).toBe('/consent');
    const back = await consent.submit('Allow', {}, started.atClient);
    const client = await finish(started, back);
    await client.close();
  });

  it('/account with Kratos: its session is the account session; the password changes through Kratos’s settings flow, ending the other sessions', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const person = { ...MARGARET };
    const { browser: a } = await registered(person);
    const b = new Browser();
    await personSignsIn(b, await startAuthorization(), person, 'sign-in');
    // Without a Kratos session, /account sends the browser to Kratos's login flow.
    const anonymous = await new Browser().open(`${stack.baseUrl}/account`);
    expect(anonymous.url.pathname).toBe('/kratos/login');
    const account = await a.open(`${stack.baseUrl}/account`);
    expect(account.status).toBe(200);
    expect(account.text()).toContain(person.email);
    // Activity (issue 17) with Kratos: the person's own sign-ins and tool calls, under the Kratos identity.
    // (The trail is written in batches, about once a second.)
    let activity = await a.open(`${stack.baseUrl}/account/activity`);
    for (let i = 0; i < 20 && !activity.text().includes('Used tool whoami'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      activity = await a.open(`${stack.baseUrl}/account/activity`);
    }
    expect(activity.url.pathname, activity.text()).toBe('/account/activity');
    expect(activity.text()).toContain(`Signed in as ${person.email}`);
    expect(activity.text()).toContain('Used tool whoami');
    expect((await new Browser().open(`${stack.baseUrl}/account/activity`)).url.pathname).toBe('/kratos/login');

    const settings = await a.open(`${stack.baseUrl}/account/password`);
    expect(settings.url.pathname, settings.text()).toBe('/kratos/settings');
    expect(settings.text()).toContain('Change your password');
    const newPassword = 'difference engine 1834';
    const saved = await settings.submit('Save', { fill: { Password: newPassword }, buttonValue: 'password' });
    expect(saved.status, saved.text()).toBe(200);
    expect(saved.text()).toMatch(/Your changes are saved|Your changes have been saved/);
    // The other browser's Kratos session ended (revoke_active_sessions): /account asks it to sign in.
    expect((await b.open(`${stack.baseUrl}/account`)).url.pathname).toBe('/kratos/login');
    expect(await whoamiStatus(a)).toBe(200);

    const old = await startAuthorization();
    const c = new Browser();
    const refused = await (await c.open(old.oauth.authorizationUrl!.href, old.atClient)).submit('Sign in with password', { fill: { Email: person.email, Password: person.password } }, old.atClient);
    expect(refused.doc.querySelector('[role=alert]')?.textContent.trim()).toBe(INVALID_CREDENTIALS);
    const fresh = await startAuthorization();
    await personSignsIn(new Browser(), fresh, { ...person, password: newPassword }, 'sign-in');
  });

  it('a weak new password in Kratos’s settings flow: its policy message on our page, the old password still works', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const person = { ...ALAN };
    const { browser } = await registered(person);
    const settings = await browser.open(`${stack.baseUrl}/account/password`);
    const refused = await settings.submit('Save', { fill: { Password: 'short' }, buttonValue: 'password' });
    expect(refused.url.pathname).toBe('/kratos/settings');
    expect(refused.text()).toContain(TOO_SHORT);
    await personSignsIn(new Browser(), await startAuthorization(), person, 'sign-in');
  });

  it('an identity deleted in Kratos: the sweep revokes its consents and sessions at Hydra, refuses its tokens and deletes its tool data', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const { browser, client, sub } = await registered(HEDY);
    expect((await call(client, 'notes_add', { title: 'frequency hopping', body: 'torpedo guidance' })).isError).toBe(false);
    const other = await registered(KATHERINE);
    const hydraAdmin = createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) });
    expect((await hydraAdmin.listConsentSessions(sub)).length).toBeGreaterThan(0);

    expect(await kratos.admin.deleteIdentity(sub)).toBe(true);
    const report = await stack.server.identitySweep!.runOnce();
    expect(report.removed).toEqual([sub]);
    expect(report.checked).toBeGreaterThanOrEqual(2);
    // Its token is refused at once; Hydra holds no consent (so no refresh token) for it.
    await expect(call(client, 'whoami')).rejects.toThrow();
    expect(await hydraAdmin.listConsentSessions(sub)).toEqual([]);
    const db = await openDatabase({ kind: 'sqlite', path: stack.env.DATABASE_PATH! });
    try {
      expect(await db.selectFrom('notes').select('id').where('sub', '=', sub).execute()).toEqual([]);
      expect(await db.selectFrom('kratos_subjects').select('sub').where('sub', '=', sub).execute()).toEqual([]);
    } finally {
      await db.destroy();
    }
    // The same browser cannot come back as that identity (Kratos ended its sessions; Hydra's too).
    const { oauth, atClient } = await startAuthorization();
    expect((await browser.open(oauth.authorizationUrl!.href, atClient)).url.pathname).toBe('/kratos/login');
    // Everyone else is untouched; a second sweep finds nothing to do.
    expect((await call(other.client, 'whoami')).value.sub).toBe(other.sub);
    expect((await stack.server.identitySweep!.runOnce()).removed).toEqual([]);
    await other.client.close();
    await client.close().catch(() => undefined);
  });

  /** An MCP request with this bearer token: its HTTP status (401 when refused). */
  async function mcpStatus(token: string) {
    const res = await fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    await res.body?.cancel();
    return res.status;
  }

  /** A refresh at our /token, as the MCP client would do it. */
  async function refresh(refreshToken: string) {
    const res = await fetch(`${stack.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: registeredApp!.client_id }),
    });
    return { status: res.status, body: (await res.json()) as { error?: string; access_token?: string } };
  }

  it('issue 26 #7: a deactivated identity loses access at the next sweep (refresh, token, Hydra consents and sessions), its data kept; reactivated, it signs in again', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const { browser, client, sub, oauth } = await registered(RADIA);
    expect((await call(client, 'notes_add', { title: 'spanning tree', body: 'algorhyme' })).isError).toBe(false);
    const { access_token: accessToken, refresh_token: refreshToken } = oauth.tokens()!;
    expect(refreshToken, 'the app stays connected').toBeTruthy();
    const hydraAdmin = createHydraAdmin({ adminUrl: new URL(stack.hydra.adminUrl) });
    const identity = (await kratos.admin.getIdentity(sub))!;
    const setState = (state: 'active' | 'inactive') =>
      kratos.admin.updateIdentity(sub, { schema_id: identity.schema_id, traits: identity.traits, state, metadata_public: identity.metadata_public ?? null, metadata_admin: identity.metadata_admin ?? null });

    expect((await setState('inactive'))?.state).toBe('inactive');
    const report = await stack.server.identitySweep!.runOnce();
    expect(report.removed, 'deactivated is not deleted').toEqual([]);
    // The refresh token died with Hydra's consents; the access token is refused.
    const refused = await refresh(refreshToken!);
    expect([refused.status, refused.body.error], 'refresh after deactivation').toEqual([400, 'invalid_grant']);
    expect(await mcpStatus(accessToken)).toBe(401);
    expect(await hydraAdmin.listConsentSessions(sub)).toEqual([]);
    // Nothing deleted: the notes, and the identity the sweep watches.
    const db = await openDatabase({ kind: 'sqlite', path: stack.env.DATABASE_PATH! });
    try {
      expect(await db.selectFrom('notes').select('title').where('sub', '=', sub).execute()).toEqual([{ title: 'spanning tree' }]);
      expect(await db.selectFrom('kratos_subjects').select('sub').where('sub', '=', sub).execute()).toEqual([{ sub }]);
    } finally {
      await db.destroy();
    }
    // Kratos refuses the sign-in: the same browser's session no longer counts, the password is refused.
    const blocked = await startAuthorization();
    const form = await browser.open(blocked.oauth.authorizationUrl!.href, blocked.atClient);
    expect(form.url.pathname, form.text()).toBe('/kratos/login');
    const denied = await form.submit('Sign in with password', { fill: { Email: RADIA.email, Password: RADIA.password } }, blocked.atClient);
    expect(denied.url.pathname, denied.text()).not.toBe('/consent');
    expect(blocked.atClient(denied.url)).toBe(false);
    expect(denied.text()).toContain('This account was disabled.');
    // A second sweep finds nothing more to do.
    expect(await stack.server.identitySweep!.runOnce()).toMatchObject({ removed: [], suspended: [], reactivated: [] });

    expect((await setState('active'))?.state).toBe('active');
    expect((await stack.server.identitySweep!.runOnce()).reactivated).toEqual([sub]);
    const started = await startAuthorization();
    const { back } = await personSignsIn(new Browser(), started, RADIA, 'sign-in');
    const again = await finish(started, back);
    try {
      expect((await call(again, 'whoami')).value.sub).toBe(sub);
      expect((await call(again, 'notes_list')).text).toContain('spanning tree');
      const fresh = started.oauth.tokens()!;
      expect(await mcpStatus(fresh.access_token)).toBe(200);
      expect((await refresh(fresh.refresh_token!)).status, 'the new flow’s refresh token works').toBe(200);
      // What was issued before the deactivation stays dead.
      expect(await mcpStatus(accessToken)).toBe(401);
      expect((await refresh(refreshToken!)).status).toBe(400);
    } finally {
      await again.close();
      await client.close().catch(() => undefined);
    }
  });

  it('delete my account on /account with Kratos: a recent sign-in instead of the password; the identity, its access and data go', async (ctx) => {
    ctx.onTestFailed(dumpLogs);
    const { browser, client, sub } = await registered(GRACE_H);
    const page = await browser.open(`${stack.baseUrl}/account/delete`);
    expect(page.status, page.text()).toBe(200);
    expect(page.doc.querySelector('input[type=password]')).toBeNull();
    const done = await page.submit('Delete my account', { check: ['I understand that my account and its data will be deleted for good'] });
    expect(done.status, done.text()).toBe(200);
    expect(done.text()).toContain('Your account has been deleted');
    expect(await kratos.admin.getIdentity(sub)).toBeUndefined();
    await expect(call(client, 'whoami')).rejects.toThrow();
    await client.close().catch(() => undefined);
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

describe('an expired Kratos flow (real Kratos with a 2-second login flow lifespan)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      identity: 'kratos',
      kratosEnv: { SELFSERVICE_FLOWS_LOGIN_LIFESPAN: '2s', SELFSERVICE_FLOWS_REGISTRATION_LIFESPAN: '2s' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each(['login', 'registration'] as const)('an expired %s flow starts a fresh one that returns to the same place, instead of an error', async (kind) => {
    const browser = new Browser();
    const returnTo = `${stack.baseUrl}/account`;
    const first = await browser.open(kratosPublicUrls(stack.kratos!.publicUrl).browserFlow(kind, returnTo).href);
    expect(first.url.pathname).toBe(`/kratos/${kind}`);
    const oldId = first.url.searchParams.get('flow')!;
    await new Promise((r) => setTimeout(r, 3000));
    const again = await browser.open(first.url.href);
    expect(again.status).toBe(200);
    expect(again.url.pathname).toBe(`/kratos/${kind}`);
    const newId = again.url.searchParams.get('flow');
    expect(newId).not.toBe(oldId);
    // The fresh flow was started with the expired one's return_to (Kratos said where in its 410).
    const starts = browser.history.filter((v) => v.startsWith(`GET ${stack.kratos!.publicUrl}/self-service/${kind}/browser?return_to=${encodeURIComponent(returnTo)}`));
    expect(starts).toHaveLength(2);
  });
});
