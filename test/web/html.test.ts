import { parse } from 'node-html-parser';
import { describe, expect, it } from 'vitest';
import { changePasswordPage, deleteAccountPage } from '../../src/account/accountPages.js';
import { html, join, SafeHtml } from '../../src/web/html.js';
import { errorPage, layout, messagePage } from '../../src/web/layout.js';
import { consentPage, loginPage, logoutPage } from '../../src/signin/pages.js';
import { accountPage, accountSignInPage } from '../../src/account/accountPages.js';

/**
 * A hostile value per field: it closes an attribute with either quote, opens a
 * script and an element with a handler. The field's name inside tells which
 * interpolation let it through.
 */
const evil = (field: string) => `"'><script>alert("${field}")</script><img src=x onerror=alert(1)>&`;
/** What escaping must turn `evil(field)` into: written out here, independent of src/web/html.ts. */
const escaped = (field: string) => `&quot;&#39;&gt;&lt;script&gt;alert(&quot;${field}&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;`;

/** Every page, with every interpolated value hostile; `fields` names each one that must show up escaped. */
const PAGES: [string, () => string, string[]][] = [
  [
    'sign-in (with an error)',
    () => loginPage({ challenge: evil('challenge'), csrf: evil('csrf'), clientName: evil('clientName'), email: evil('email'), error: evil('error') }),
    ['challenge', 'csrf', 'clientName', 'email', 'error'],
  ],
  [
    'consent (metadata-document client, required and optional scopes)',
    () =>
      consentPage({
        challenge: evil('challenge'),
        csrf: evil('csrf'),
        client: { name: evil('client.name'), uri: evil('client.uri'), logoUri: evil('client.logoUri'), documentHost: evil('client.documentHost') },
        scopes: [
          { name: evil('scope.required.name'), description: evil('scope.required.description'), required: true },
          { name: evil('scope.name'), description: evil('scope.description'), required: false },
        ],
        resources: [evil('resource.1'), evil('resource.2')],
        userEmail: evil('userEmail'),
      }),
    ['challenge', 'csrf', 'client.name', 'client.uri', 'client.logoUri', 'client.documentHost', 'scope.required.name', 'scope.required.description', 'scope.name', 'scope.description', 'resource.1', 'resource.2', 'userEmail'],
  ],
  ['sign-out', () => logoutPage({ challenge: evil('challenge'), csrf: evil('csrf'), clientName: evil('clientName') }), ['challenge', 'csrf', 'clientName']],
  ['account sign-in (with an error)', () => accountSignInPage({ csrf: evil('csrf'), email: evil('email'), error: evil('error') }), ['csrf', 'email', 'error']],
  [
    'account overview (with a notice and grants)',
    () =>
      accountPage({
        csrf: evil('csrf'),
        email: evil('email'),
        notice: evil('notice'),
        grants: [
          { clientId: evil('clientId'), clientName: evil('clientName'), scopes: [evil('scope.1'), evil('scope.2')], grantedAt: '<b>"\'&</b>', remembered: true },
          { clientId: 'c2', clientName: 'Second', scopes: [], remembered: false },
        ],
      }),
    ['csrf', 'email', 'notice', 'clientId', 'clientName', 'scope.1', 'scope.2'],
  ],
  ['error', () => errorPage({ title: evil('title'), message: evil('message') }), ['title', 'message']],
  ['message', () => messagePage({ title: evil('title'), message: evil('message') }), ['title', 'message']],
  [
    'change password (every error)',
    () => changePasswordPage({ csrf: evil('csrf'), email: evil('email'), errors: { current: evil('current'), next: evil('next'), repeat: evil('repeat'), form: evil('form') } }),
    ['csrf', 'email', 'current', 'next', 'repeat', 'form'],
  ],
  [
    'delete account (every error)',
    () => deleteAccountPage({ csrf: evil('csrf'), exportCsrf: evil('exportCsrf'), email: evil('email'), errors: { password: evil('password'), confirm: evil('confirm'), form: evil('form') } }),
    ['csrf', 'exportCsrf', 'email', 'password', 'confirm', 'form'],
  ],
];

describe('pages escape every interpolated value by default (OWASP XSS Prevention, rule 1)', () => {
  it.each(PAGES)('%s: each hostile field comes out escaped, never as markup', (_page, render, fields) => {
    const out = render();
    for (const field of fields) {
      expect(out, field).toContain(escaped(field));
      expect(out, field).not.toContain(`<script>alert("${field}")`);
    }
    // Nothing the values carried became an element or an attribute.
    const doc = parse(out);
    expect(doc.querySelectorAll('script')).toHaveLength(0);
    expect(doc.querySelectorAll('[onerror]')).toHaveLength(0);
    expect(doc.querySelectorAll('img').filter((i) => i.getAttribute('src') === 'x')).toHaveLength(0);
  });

  it('keeps a hostile value intact as the text and attribute a browser reads back', () => {
    const doc = parse(loginPage({ challenge: evil('challenge'), csrf: 'c', clientName: evil('clientName'), email: evil('email') }));
    expect(doc.querySelector('strong')?.text).toBe(evil('clientName'));
    expect(doc.querySelector('input[name=challenge]')?.getAttribute('value')).toBe(evil('challenge'));
    expect(doc.querySelector('input[name=email]')?.getAttribute('value')).toBe(evil('email'));
    expect(doc.querySelector('title')?.text).toBe('Sign in · hydra-mcp');
  });

  it('escapes the sliced grant date on the account page too', () => {
    const out = accountPage({ csrf: 'c', email: 'e', grants: [{ clientId: 'c', clientName: 'n', scopes: [], grantedAt: '<b>"\'&</b>', remembered: false }] });
    expect(out).toContain(' · since &lt;b&gt;&quot;&#39;&amp;&lt;/b&gt;');
    expect(parse(out).querySelectorAll('b')).toHaveLength(0);
  });
});

describe('html template', () => {
  it.each([
    ['&', '&amp;'],
    ['<', '&lt;'],
    ['>', '&gt;'],
    ['"', '&quot;'],
    ["'", '&#39;'],
    ['a&b<c>"d\'', 'a&amp;b&lt;c&gt;&quot;d&#39;'],
    [42, '42'],
  ])('escapes %j as %j', (value, out) => {
    expect(html`<p title="${value}">${value}</p>`.text).toBe(`<p title="${out}">${out}</p>`);
  });

  it('leaves nothing for false, null and undefined (so `cond && html`…`` reads naturally)', () => {
    expect(html`[${false}${null}${undefined}]`.text).toBe('[]');
  });

  it('does not escape a nested fragment again, and escapes strings inside lists', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}</p>`.text).toBe('<p><b>&lt;i&gt;</b></p>');
    expect(html`<ul>${[html`<li>1</li>`, '<li>2</li>']}</ul>`.text).toBe('<ul><li>1</li>&lt;li&gt;2&lt;/li&gt;</ul>');
  });

  it('join puts an escaped separator between fragments', () => {
    expect(join([html`<code>a</code>`, html`<code>b</code>`], ', ').text).toBe('<code>a</code>, <code>b</code>');
    expect(join([html`<i>a</i>`, html`<i>b</i>`], '<br>').text).toBe('<i>a</i>&lt;br&gt;<i>b</i>');
    expect(join([], '\n').text).toBe('');
  });

  it('the page layout takes only html fragments: a plain string body is a type error', () => {
    // @ts-expect-error a string body would reach the page unescaped; `npx tsc --noEmit` fails if layout accepts it.
    const raw = () => layout('t', '<p>raw</p>');
    expect(typeof raw).toBe('function');
    expect(layout('<t>', html`<p>${'<x>'}</p>`)).toContain('<title>&lt;t&gt; · hydra-mcp</title>');
    expect(layout('t', new SafeHtml('<p>trusted</p>'))).toContain('<p>trusted</p>');
  });
});
