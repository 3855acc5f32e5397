import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readCookie, Signer } from '../../src/web/cookies.js';
import { Csrf } from '../../src/web/csrf.js';
import { ALICE, type SignInApp, startSignInApp } from '../account/signInApp.js';

// Sign-in and account pages, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));

// A truncated UTF-8 escape: decodeURIComponent throws URIError on it.
const BAD = '%E0%A4%A';

describe('readCookie (a real Express route echoing what it reads)', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const app = express();
    app.get('/echo', (req, res) => {
      res.json({ value: readCookie(req, String(req.query.name)) ?? null });
    });
    // A page that renders its form twice in one request (e.g. again with an error).
    const csrf = new Csrf(new Signer('s'.repeat(32)), { secure: false });
    app.get('/twice', (req, res) => {
      res.json({ first: csrf.tokenFor(req, res, 'b'), second: csrf.tokenFor(req, res, 'b') });
    });
    await new Promise<void>((r) => (server = app.listen(0, '127.0.0.1', () => r())));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
  const read = async (name: string, cookie?: string) => {
    const res = await fetch(`${base}/echo?name=${name}`, { headers: cookie === undefined ? {} : { cookie } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { value: string | null }).value;
  };

  it.each([
    ['a plain value', 'hmcp_csrf', 'a=1; hmcp_csrf=seed-value', 'seed-value'],
    ['a percent-encoded value, decoded', 'hmcp_account', 'hmcp_account=sub%7C123.mac', 'sub|123.mac'],
    ['a value in double quotes (RFC 6265 §4.1.1 cookie-value)', 'hmcp_csrf', 'hmcp_csrf="quoted"', 'quoted'],
    ['spaces around the pair', 'hmcp_csrf', '  hmcp_csrf =  spaced  ; b=2', 'spaced'],
    ['the first of two cookies with the same name', 'hmcp_csrf', 'hmcp_csrf=first; hmcp_csrf=second', 'first'],
    ['an empty value', 'hmcp_csrf', 'hmcp_csrf=', ''],
  ])('reads %s', async (_case, name, header, expected) => {
    expect(await read(name, header)).toBe(expected);
  });

  it.each([
    ['no Cookie header', undefined],
    ['another cookie only', 'hmcp_csrf_other=x; other=hmcp_csrf'],
    ['a bad percent-encoding', `hmcp_csrf=${BAD}`],
    ['a bad percent-encoding among good cookies', `a=1; hmcp_csrf=${BAD}; b=2`],
    ['a lone percent sign', 'hmcp_csrf=100%'],
    ['a pair without "="', 'hmcp_csrf'],
  ])('treats %s as absent', async (_case, header) => {
    expect(await read('hmcp_csrf', header)).toBeNull();
  });

  it('does not find names from the object prototype ("constructor", "__proto__")', async () => {
    expect(await read('constructor', 'a=1')).toBeNull();
    expect(await read('__proto__', 'a=1')).toBeNull();
  });

  it.each([
    ['a malformed', `hmcp_csrf=${BAD}`],
    ['a too short', 'hmcp_csrf=short'],
  ])('issues one CSRF seed per request when the browser sent %s one, however often the form is rendered', async (_case, cookie) => {
    const res = await fetch(`${base}/twice`, { headers: { cookie } });
    const { first, second } = (await res.json()) as { first: string; second: string };
    expect(second).toBe(first);
    expect(res.headers.getSetCookie().filter((c) => c.startsWith('hmcp_csrf=')).length).toBe(1);
  });

  it('reads a good cookie next to a malformed one', async () => {
    expect(await read('b', `hmcp_csrf=${BAD}; b=fine`)).toBe('fine');
  });
});

describe('a malformed cookie on the sign-in pages is ignored, never a 500 (stub Hydra admin)', () => {
  let app: SignInApp;
  beforeAll(async () => {
    app = await startSignInApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it.each([
    ['GET /login?login_challenge=…', `hmcp_csrf=${BAD}`, '/login?login_challenge=lc'],
    ['GET /account', `hmcp_csrf=${BAD}`, '/account'],
    ['GET /account', `hmcp_account=${BAD}`, '/account'],
    ['GET /account', `hmcp_account=${BAD}; hmcp_csrf=${BAD}`, '/account'],
  ])('%s with Cookie %s shows the sign-in form and sets a fresh CSRF cookie', async (_case, cookie, path) => {
    const res = await fetch(`${app.base}${path}`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<button type="submit">Sign in</button>');
    expect(res.headers.getSetCookie().filter((c) => c.startsWith('hmcp_csrf=')).length).toBe(1);
  });

  it.each([
    ['/login', `hmcp_csrf=${BAD}`, [['challenge', 'lc']]],
    ['/account/sign-in', `hmcp_csrf=${BAD}`, []],
    ['/account/sign-in', `hmcp_account=${BAD}`, []],
  ] as const)('POST %s with Cookie %s is refused as a form from elsewhere (400), not a 500', async (path, cookie, extra) => {
    const res = await app.post(path, [...extra, ['csrf', 'x'], ['email', ALICE.email], ['password', ALICE.password]], cookie);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('did not come from this site');
  });

  it('the fresh CSRF cookie set beside a malformed one signs in on /account', async () => {
    const form = await app.formOf('/account', `hmcp_account=${BAD}; hmcp_csrf=${BAD}`);
    expect(form.cookie).toMatch(/^hmcp_csrf=[\w-]{16,}$/);
    const res = await app.post('/account/sign-in', [['csrf', form.csrf], ['email', ALICE.email], ['password', ALICE.password]], form.cookie);
    expect(res.status).toBe(303);
  });

  it('a signed-in /account session ignores a malformed second session cookie', async () => {
    const form = await app.formOf('/account');
    const signedIn = await app.post('/account/sign-in', [['csrf', form.csrf], ['email', ALICE.email], ['password', ALICE.password]], form.cookie);
    const session = signedIn.headers.getSetCookie().find((c) => c.startsWith('hmcp_account='))!.split(';')[0]!;
    const page = await fetch(`${app.base}/account`, { headers: { cookie: `${session}; ${form.cookie}; hmcp_account=${BAD}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`Signed in as <strong>${ALICE.email}</strong>`);
  });
});
