import type { Server } from 'node:http';
import express from 'express';
import { type HTMLElement, parse } from 'node-html-parser';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAccountRemoval } from '../../src/account/accountRemoval.js';
import { type HydraAdmin, HydraError } from '../../src/hydra/index.js';
import { createLogger } from '../../src/log/logger.js';
import { createAccountRouter } from '../../src/account/accountRouter.js';
import { Signer } from '../../src/web/cookies.js';
import { LoginThrottle } from '../../src/limits/throttle.js';
import { createUserStore, type User } from '../../src/account/userStore.js';
import { openDatabase } from '../../src/store/database.js';
import { exportSubjectData } from '../../src/store/export.js';
import { removedSubjectsStore } from '../../src/store/removedSubjectsStore.js';
import { scopedStoreFor } from '../../src/store/scopedStore.js';

// Sign-in and account pages, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));

const ALICE = { email: 'alice@example.com', password: 'correct horse' };
const BOB = { email: 'bob@example.com', password: 'battery staple' };

/**
 * The /account router in a real Express app as app.ts wires it: the real user
 * store, export and account-removal path on an in-memory SQLite database; a
 * stub Hydra admin API records what it is asked (and can be "down").
 */
async function startAccountApp() {
  const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
  const users = createUserStore(db);
  const alice = await users.add(ALICE.email, ALICE.password);
  const bob = await users.add(BOB.email, BOB.password);
  for (const [u, n] of [[alice, 3], [bob, 2]] as const) {
    for (let i = 0; i < n; i++) await scopedStoreFor(db, u.id).notes.add({ title: `${u.email} note ${i}`, body: '<b>&</b>' });
    await scopedStoreFor(db, u.id).records('prefs').put('theme', { dark: true });
  }
  const hydraCalls: string[] = [];
  const state = { hydraDown: false };
  const hydraCall = (name: string) => async (sub: string) => {
    if (state.hydraDown) throw new HydraError(0, 'temporarily_unavailable', 'Hydra admin API unreachable');
    hydraCalls.push(`${name} ${sub}`);
  };
  const hydra = {
    listConsentSessions: async () => [],
    revokeConsentSessions: hydraCall('revokeConsentSessions'),
    revokeLoginSessions: hydraCall('revokeLoginSessions'),
  } as unknown as HydraAdmin;
  const log = createLogger('silent');
  const removeAccount = createAccountRemoval({ db, users, hydra, removed: removedSubjectsStore(db), log });
  const deleted: string[] = [];
  const waits: number[] = [];
  const app = express();
  app.use(
    createAccountRouter({
      hydra,
      users,
      signer: new Signer('k'.repeat(32)),
      secureCookies: false,
      throttle: new LoginThrottle({ lockAfter: { account: 5, address: 50 } }),
      wait: async (ms) => void waits.push(ms),
      exportData: (sub) => exportSubjectData(db, sub),
      deleteAccount: async (sub) => {
        deleted.push(sub);
        await removeAccount({ sub });
      },
      log,
    }),
  );
  let server!: Server;
  await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    base,
    db,
    users,
    alice,
    bob,
    hydraCalls,
    state,
    deleted,
    waits,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await db.destroy();
    },
  };
}
type AccountApp = Awaited<ReturnType<typeof startAccountApp>>;

/** A browser: a cookie jar, forms read from the page it last opened, redirects not followed. */
class Client {
  readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}

  get cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  private keep(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      // Cleared (Expires in the past) → dropped, as a browser does.
      if (attrs.some((a) => /expires=Thu, 01 Jan 1970/i.test(a))) this.jar.delete(name);
      else this.jar.set(name, pair!.slice(eq + 1).trim());
    }
  }
  async get(path: string) {
    const res = await fetch(`${this.base}${path}`, { redirect: 'manual', headers: { cookie: this.cookieHeader } });
    this.keep(res);
    return { res, doc: parse(await res.text()) };
  }
  async post(path: string, form: Record<string, string | undefined>, cookieHeader = this.cookieHeader) {
    const body = new URLSearchParams(Object.entries(form).filter((e): e is [string, string] => e[1] !== undefined));
    const res = await fetch(`${this.base}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieHeader },
      body: body.toString(),
    });
    this.keep(res);
    return res;
  }
  /** The CSRF token of the form posting to `action` on the page at `path`. */
  async tokenFor(path: string, action: string) {
    const { doc } = await this.get(path);
    const token = doc.querySelector(`form[action="${action}"] input[name=csrf]`)?.getAttribute('value');
    if (!token) throw new Error(`no form to ${action} on ${path}:\n${doc.textContent}`);
    return token;
  }
  async signIn(who: { email: string; password: string }) {
    const csrf = await this.tokenFor('/account', '/account/sign-in');
    const res = await this.post('/account/sign-in', { csrf, ...who });
    expect(res.status, 'signed in').toBe(303);
    return this;
  }
  async signedInAs() {
    const { doc } = await this.get('/account');
    return /Signed in as (\S+)\./.exec(doc.textContent)?.[1];
  }
}

/** What must stay untouched after a refused deletion. */
async function footprint(app: AccountApp, user: User) {
  const notes = await app.db.selectFrom('notes').select('id').where('sub', '=', user.id).execute();
  const removed = await app.db.selectFrom('removed_subjects').select('sub').execute();
  return { user: !!(await app.users.findById(user.id)), notes: notes.length, removed: removed.length };
}

/** Each input a person can reach has a <label for> naming it; each aria-describedby id exists. */
function expectLabelledAndDescribed(doc: HTMLElement) {
  for (const input of doc.querySelectorAll('input:not([type=hidden])')) {
    const id = input.getAttribute('id');
    expect(id, `input ${input.toString()} has an id`).toBeTruthy();
    expect(doc.querySelector(`label[for="${id}"]`)?.textContent.trim(), `label for #${id}`).toBeTruthy();
    for (const ref of (input.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean)) {
      expect(doc.querySelector(`#${ref}`)?.textContent.trim(), `#${id} describedby #${ref}`).toBeTruthy();
    }
  }
}

/** The error text tied to the input with `id`, as a screen reader reads it after the label. */
function errorOf(doc: HTMLElement, id: string) {
  const input = doc.querySelector(`#${id}`)!;
  const refs = (input.getAttribute('aria-describedby') ?? '').split(' ').filter((r) => r.endsWith('-error'));
  return { text: refs.map((r) => doc.querySelector(`#${r}`)?.textContent.trim()).join(' '), invalid: input.getAttribute('aria-invalid'), autofocus: input.hasAttribute('autofocus') };
}

describe('/account self-service (real Express app, user store, export and removal; stub Hydra admin)', () => {
  let app: AccountApp;
  let alice: Client;
  beforeEach(async () => {
    app = await startAccountApp();
    alice = await new Client(app.base).signIn(ALICE);
  });
  afterEach(async () => {
    await app.close();
  });

  it('sends a browser without an account session from each page to the sign-in form', async () => {
    const stranger = new Client(app.base);
    for (const path of ['/account/password', '/account/delete']) {
      const { res } = await stranger.get(path);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/account');
    }
  });

  it('the account page offers each action under its own heading, with labelled controls', async () => {
    const { res, doc } = await alice.get('/account');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(doc.querySelectorAll('h2').map((h) => h.textContent)).toEqual(['Apps with access', 'Sign-in and password', 'Your data', 'Delete account']);
    expect(doc.querySelector('a[href="/account/password"]')?.textContent).toBe('Change password');
    expect(doc.querySelector('form[action="/account/export"] button')?.textContent).toBe('Download my data');
    expect(doc.querySelector('a[href="/account/delete"]')?.textContent).toBe('Delete my account');
    // A notice is shown only for a known "done" value; others (even inherited names) show none.
    for (const done of ['constructor', '__proto__', 'nope']) {
      const other = await alice.get(`/account?done=${done}`);
      expect(other.res.status).toBe(200);
      expect(other.doc.querySelector('[role=status]')).toBeNull();
    }
  });

  describe('change password', () => {
    const change = async (c: Client, form: Record<string, string | undefined>, csrf?: string) =>
      c.post('/account/password', { csrf: csrf ?? (await c.tokenFor('/account/password', '/account/password')), ...form });
    const valid = { 'current-password': ALICE.password, 'new-password': 'a much better password', 'repeat-password': 'a much better password' };

    it('shows a form with labelled fields, a hint tied to the new password and the current one focused', async () => {
      const { res, doc } = await alice.get('/account/password');
      expect(res.status).toBe(200);
      expect(doc.querySelector('h1')?.textContent).toBe('Change password');
      expectLabelledAndDescribed(doc);
      expect(doc.querySelectorAll('input:not([type=hidden])').map((i) => [i.id, i.getAttribute('autocomplete')])).toEqual([
        ['current-password', 'current-password'],
        ['new-password', 'new-password'],
        ['repeat-password', 'new-password'],
      ]);
      expect(doc.querySelector('#new-password')?.getAttribute('aria-describedby')).toBe('new-password-hint');
      expect(doc.querySelector('#current-password')?.hasAttribute('autofocus')).toBe(true);
    });

    it('changes it, ends Hydra login sessions and every other /account session, and keeps this browser signed in', async () => {
      const otherDevice = await new Client(app.base).signIn(ALICE);
      const before = otherDevice.cookieHeader;
      const res = await change(alice, valid);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/account?done=password');
      expect(app.hydraCalls).toEqual([`revokeLoginSessions ${app.alice.id}`]);
      expect(await alice.signedInAs(), 'this browser: a fresh cookie').toBe(ALICE.email);
      expect((await alice.get('/account?done=password')).doc.querySelector('[role=status]')?.textContent).toContain('Password changed');
      expect(await otherDevice.signedInAs(), 'the other device: its cookie no longer matches').toBeUndefined();
      // A copy of the old cookie is refused on a form too.
      const replay = await otherDevice.post('/account/export', { csrf: 'x' }, before);
      expect(replay.status).toBe(400);
      expect(await app.users.verify(ALICE.email, ALICE.password)).toBeUndefined();
      expect((await app.users.verify(ALICE.email, valid['new-password']))?.id).toBe(app.alice.id);
    });

    it.each([
      ['a wrong current password', { 'current-password': 'not my password' }, 401, 'current-password', 'That is not your current password.'],
      ['no current password', { 'current-password': '' }, 400, 'current-password', 'Enter your current password.'],
      ['a new password below the strength rules', { 'new-password': 'short', 'repeat-password': 'short' }, 400, 'new-password', 'The new password must be at least 8 characters.'],
      ['no new password', { 'new-password': '', 'repeat-password': '' }, 400, 'new-password', 'Enter a new password.'],
      ['two new passwords that differ', { 'repeat-password': 'a much better passwort' }, 400, 'repeat-password', 'The two new passwords are not the same.'],
    ])('refuses %s: the error tied to its field, focused, and nothing changed', async (_case, override, status, field, message) => {
      const res = await change(alice, { ...valid, ...override });
      expect(res.status).toBe(status);
      const doc = parse(await res.text());
      expect(doc.querySelector('title')?.textContent).toMatch(/^Error: Change password/);
      expect(errorOf(doc, field)).toEqual({ text: message, invalid: 'true', autofocus: true });
      expectLabelledAndDescribed(doc);
      expect(app.hydraCalls).toEqual([]);
      expect((await app.users.verify(ALICE.email, ALICE.password))?.id).toBe(app.alice.id);
    });

    it('counts wrong current passwords in the sign-in throttle: delays, then 429 with Retry-After, even for the right one', async () => {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await change(alice, { ...valid, 'current-password': `wrong ${i}` })).status);
      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expect(app.waits, 'after 3 free failures each attempt waits longer').toEqual([500, 1000]);
      const locked = await change(alice, valid);
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(parse(await locked.text()).querySelector('[role=alert]')?.textContent).toMatch(/Too many failed attempts/);
      // The same throttle guards the sign-in form.
      const fresh = new Client(app.base);
      const csrf = await fresh.tokenFor('/account', '/account/sign-in');
      expect((await fresh.post('/account/sign-in', { csrf, ...ALICE })).status).toBe(429);
      expect((await app.users.verify(ALICE.email, ALICE.password))?.id).toBe(app.alice.id);
    });

    it.each([
      ['a missing CSRF token', async () => ''],
      ['a token of another browser', async () => (await new Client(app.base).signIn(ALICE)).tokenFor('/account/password', '/account/password')],
      ['a token issued for another form (delete)', async () => alice.tokenFor('/account/delete', '/account/delete')],
    ])('refuses %s with 400 and changes nothing', async (_case, token) => {
      const res = await change(alice, valid, await token());
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('did not come from this site');
      expect(app.hydraCalls).toEqual([]);
      expect((await app.users.verify(ALICE.email, ALICE.password))?.id).toBe(app.alice.id);
    });

    it('with Hydra down: the password is changed, and the page says other sign-ins could not be ended yet', async () => {
      app.state.hydraDown = true;
      const res = await change(alice, valid);
      expect(res.headers.get('location')).toBe('/account?done=password-sessions-pending');
      expect((await app.users.verify(ALICE.email, valid['new-password']))?.id).toBe(app.alice.id);
    });
  });

  describe('download my data', () => {
    it('streams one JSON attachment of everything the person owns, nobody else\'s', async () => {
      const csrf = await alice.tokenFor('/account', '/account/export');
      const res = await alice.post('/account/export', { csrf });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="?hydra-mcp-data-\d{4}-\d\d-\d\d\.json"?$/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const doc = await res.json();
      expect(doc).toMatchObject({ format: 'hydra-mcp-export', version: 1, sub: app.alice.id, account: { email: ALICE.email } });
      expect(doc.notes.map((n: { title: string }) => n.title)).toEqual([0, 1, 2].map((i) => `${ALICE.email} note ${i}`));
      expect(doc.records).toEqual([expect.objectContaining({ collection: 'prefs', key: 'theme', value: { dark: true } })]);
      expect(JSON.stringify(doc)).not.toContain(BOB.email);
    });

    it('gives a person with no data an empty, valid document', async () => {
      const carol = await app.users.add('carol@example.com', 'carol password');
      const c = await new Client(app.base).signIn({ email: 'carol@example.com', password: 'carol password' });
      const res = await c.post('/account/export', { csrf: await c.tokenFor('/account', '/account/export') });
      expect(await res.json()).toMatchObject({ sub: carol.id, account: { email: 'carol@example.com' }, notes: [], records: [] });
    });

    it.each([
      ['a missing CSRF token', async () => ({ csrf: '', cookie: alice.cookieHeader })],
      ['no account session', async () => {
        const stranger = new Client(app.base);
        return { csrf: await stranger.tokenFor('/account', '/account/sign-in'), cookie: stranger.cookieHeader };
      }],
    ])('refuses %s with a 400 page, no data', async (_case, attempt) => {
      const { csrf, cookie } = await attempt();
      const res = await alice.post('/account/export', { csrf }, cookie);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-disposition')).toBeNull();
      expect(await res.text()).not.toContain('note 0');
    });
  });

  describe('delete my account', () => {
    const confirmAndDelete = async (c: Client, form: Record<string, string | undefined>, csrf?: string, cookie?: string) =>
      c.post('/account/delete', { csrf: csrf ?? (await c.tokenFor('/account/delete', '/account/delete')), password: ALICE.password, confirm: 'yes', ...form }, cookie);

    it('asks first: what happens, a copy to download, then password and an "I understand" box', async () => {
      const { res, doc } = await alice.get('/account/delete');
      expect(res.status).toBe(200);
      expect(doc.querySelector('h1')?.textContent).toBe('Delete your account');
      expect(doc.querySelectorAll('h2').map((h) => h.textContent)).toEqual(['Keep a copy first', 'Confirm']);
      expect(doc.querySelector('form[action="/account/export"] input[name=csrf]')).not.toBeNull();
      expectLabelledAndDescribed(doc);
      expect(doc.querySelector('#confirm')?.getAttribute('aria-describedby')).toBe('confirm-hint');
      expect(await footprint(app, app.alice)).toEqual({ user: true, notes: 3, removed: 0 });
    });

    it('deletes the account and all its data through the removal path, ends the session, and a replay is refused', async () => {
      const csrf = await alice.tokenFor('/account/delete', '/account/delete');
      const cookie = alice.cookieHeader;
      const res = await confirmAndDelete(alice, {}, csrf, cookie);
      expect(res.status).toBe(200);
      expect(parse(await res.text()).querySelector('h1')?.textContent).toBe('Your account has been deleted');
      expect(app.deleted).toEqual([app.alice.id]);
      // How often the removal asks Hydra is its own business: only that it asked, for her alone.
      expect(new Set(app.hydraCalls)).toEqual(new Set([`revokeConsentSessions ${app.alice.id}`, `revokeLoginSessions ${app.alice.id}`]));
      expect(await footprint(app, app.alice)).toEqual({ user: false, notes: 0, removed: 1 });
      expect(alice.jar.has('hmcp_account'), 'the account cookie is cleared').toBe(false);
      expect(await footprint(app, app.bob), "Bob's account and notes stay").toMatchObject({ user: true, notes: 2 });
      // The same request again, cookie and token included: the session is gone with the account.
      const replay = await confirmAndDelete(alice, {}, csrf, cookie);
      expect(replay.status).toBe(400);
      expect(await replay.text()).toContain('Your account session has ended');
      expect(app.deleted).toEqual([app.alice.id]);
    });

    it.each([
      ['a wrong password', { password: 'not my password' }, 401, 'password', 'That is not your current password.'],
      ['no password', { password: '' }, 400, 'password', 'Enter your password.'],
      ['the box not ticked', { confirm: undefined }, 400, 'confirm', 'Tick the box to confirm that you want your account deleted.'],
      ['the box with another value', { confirm: 'no' }, 400, 'confirm', 'Tick the box to confirm that you want your account deleted.'],
    ])('refuses %s: the error tied to its field, nothing removed', async (_case, override, status, field, message) => {
      const res = await confirmAndDelete(alice, override);
      expect(res.status).toBe(status);
      const doc = parse(await res.text());
      expect(doc.querySelector('title')?.textContent).toMatch(/^Error: Delete your account/);
      expect(errorOf(doc, field)).toEqual({ text: message, invalid: 'true', autofocus: true });
      expectLabelledAndDescribed(doc);
      expect(app.deleted).toEqual([]);
      expect(await footprint(app, app.alice)).toEqual({ user: true, notes: 3, removed: 0 });
    });

    it.each([
      ['a missing CSRF token', async () => ({ csrf: '' })],
      ['a token replayed from another browser', async () => ({ csrf: await (await new Client(app.base).signIn(ALICE)).tokenFor('/account/delete', '/account/delete') })],
      ['a token issued for another form (password)', async () => ({ csrf: await alice.tokenFor('/account/password', '/account/password') })],
      ['a token issued for the account page', async () => ({ csrf: await alice.tokenFor('/account', '/account/export') })],
      ["another person's session cookie with this person's form", async () => {
        const bob = await new Client(app.base).signIn(BOB);
        return { csrf: await alice.tokenFor('/account/delete', '/account/delete'), cookie: `hmcp_csrf=${alice.jar.get('hmcp_csrf')}; hmcp_account=${bob.jar.get('hmcp_account')}` };
      }],
      ['a session cookie whose subject was altered', async () => {
        const bob = await new Client(app.base).signIn(BOB);
        const forged = alice.jar.get('hmcp_account')!.replace(app.alice.id, app.bob.id);
        return { csrf: await bob.tokenFor('/account/delete', '/account/delete'), cookie: `hmcp_csrf=${bob.jar.get('hmcp_csrf')}; hmcp_account=${forged}` };
      }],
    ] as [string, () => Promise<{ csrf: string; cookie?: string }>][])('refuses %s with 400, nothing removed', async (_case, attempt) => {
      const { csrf, cookie } = await attempt();
      const res = await confirmAndDelete(alice, {}, csrf, cookie);
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/did not come from this site|session has ended/);
      expect(app.deleted).toEqual([]);
      expect(app.hydraCalls).toEqual([]);
      expect(await footprint(app, app.alice)).toEqual({ user: true, notes: 3, removed: 0 });
      expect(await footprint(app, app.bob)).toEqual({ user: true, notes: 2, removed: 0 });
    });

    it("refuses another person's own session and form with this person's password (401), nothing removed", async () => {
      const bob = await new Client(app.base).signIn(BOB);
      const res = await confirmAndDelete(bob, { password: ALICE.password });
      expect(res.status).toBe(401);
      expect(app.deleted).toEqual([]);
      expect(await footprint(app, app.alice)).toEqual({ user: true, notes: 3, removed: 0 });
      expect(await footprint(app, app.bob)).toEqual({ user: true, notes: 2, removed: 0 });
    });

    it('with Hydra down: a 503 page saying deletion stopped part-way; signing in again and repeating finishes it', async () => {
      app.state.hydraDown = true;
      const res = await confirmAndDelete(alice, {});
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('Deleting stopped part-way');
      app.state.hydraDown = false;
      const again = await new Client(app.base).signIn(ALICE);
      expect((await confirmAndDelete(again, {})).status).toBe(200);
      expect(await footprint(app, app.alice)).toEqual({ user: false, notes: 0, removed: 1 });
    });
  });
});
