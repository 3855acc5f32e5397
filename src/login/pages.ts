/**
 * Server-rendered pages for sign-in, consent, sign-out, errors and the
 * account overview: plain HTML that works without JavaScript, one
 * stylesheet. Every page is built with `html` (./html.ts), so every
 * interpolated value is escaped unless it is itself an `html` fragment.
 */
import { html, join, type SafeHtml } from './html.js';

export const STYLESHEET_PATH = '/login-assets/style.css';

/** The page around `body`: an `html` fragment, so a plain string cannot reach it unescaped. */
export function layout(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · hydra-mcp</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>`.text;
}

const pageError = (error: string | undefined) => error && html`<p class="error" role="alert">${error}</p>`;

export function loginPage(opts: { challenge: string; csrf: string; clientName: string; email?: string; error?: string }): string {
  return layout(
    'Sign in',
    html`<h1>Sign in</h1>
<p>to continue to <strong>${opts.clientName}</strong></p>
${pageError(opts.error)}
<form method="post" action="/login">
<input type="hidden" name="challenge" value="${opts.challenge}">
<input type="hidden" name="csrf" value="${opts.csrf}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}" ${!opts.email && html`autofocus`}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required ${!!opts.email && html`autofocus`}>
<p class="check"><input type="checkbox" id="remember" name="remember" value="yes"> <label for="remember">Keep me signed in on this device</label></p>
<button type="submit">Sign in</button>
</form>`,
  );
}

export interface ConsentScope {
  name: string;
  description: string;
  /** Granted whenever asked; shown checked and fixed. */
  required: boolean;
}

export interface ConsentClient {
  name: string;
  uri?: string;
  logoUri?: string;
  /**
   * For a client identified by a metadata document: the host serving it. The
   * name is whatever the document says; the host is what an impostor cannot copy.
   */
  documentHost?: string;
}

export function consentPage(opts: {
  challenge: string;
  csrf: string;
  client: ConsentClient;
  scopes: ConsentScope[];
  resources: string[];
  userEmail?: string;
}): string {
  const scopes = join(
    opts.scopes.map((s, i) =>
      s.required
        ? html`<li><input type="checkbox" id="scope-${i}" checked disabled><input type="hidden" name="scope" value="${s.name}">
<label for="scope-${i}">${s.description} <code>${s.name}</code> <span class="required">(required)</span></label></li>`
        : html`<li><input type="checkbox" id="scope-${i}" name="scope" value="${s.name}" checked>
<label for="scope-${i}">${s.description} <code>${s.name}</code></label></li>`,
    ),
    '\n',
  );
  const resources = opts.resources.length
    ? html`<p>Access is for: ${join(opts.resources.map((r) => html`<code>${r}</code>`), ', ')}</p>`
    : html`<p class="error">This request names no resource of this server; the app will get no access to its tools.</p>`;
  const { logoUri, uri, documentHost } = opts.client;
  return layout(
    'Allow access',
    html`${logoUri && html`<img class="logo" src="${logoUri}" alt="" width="48" height="48">`}<h1>Allow access?</h1>
<p><strong>${opts.client.name}</strong> wants to use your account${opts.userEmail && html` <strong>${opts.userEmail}</strong>`}.</p>
${documentHost && html`<p class="client-host">Identified by its client metadata document at <strong>${documentHost}</strong></p>`}
${uri && html`<p class="muted">${uri}</p>`}
${resources}
<form method="post" action="/consent">
<input type="hidden" name="challenge" value="${opts.challenge}">
<input type="hidden" name="csrf" value="${opts.csrf}">
<fieldset>
<legend>It asks to:</legend>
<ul class="scopes">
${scopes}
</ul>
</fieldset>
<p class="check"><input type="checkbox" id="remember" name="remember" value="yes"> <label for="remember">Remember this decision for 30 days</label></p>
<div class="actions">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</div>
</form>
<p class="muted">You can withdraw access at any time on <a href="/account">your account page</a>.</p>`,
  );
}

export function logoutPage(opts: { challenge: string; csrf: string; clientName?: string }): string {
  return layout(
    'Sign out',
    html`<h1>Sign out?</h1>
<p>${opts.clientName ? html`<strong>${opts.clientName}</strong> asks to sign you out.` : 'You are about to sign out.'}</p>
<form method="post" action="/logout">
<input type="hidden" name="challenge" value="${opts.challenge}">
<input type="hidden" name="csrf" value="${opts.csrf}">
<div class="actions">
<button type="submit" name="decision" value="yes">Sign out</button>
<button type="submit" name="decision" value="no" class="secondary">Stay signed in</button>
</div>
</form>`,
  );
}

export interface AccountGrant {
  clientId: string;
  clientName: string;
  scopes: string[];
  grantedAt?: string;
  remembered: boolean;
}

/**
 * `next`: where to go after signing in (only paths under /account/connections/,
 * checked again when the form comes back); `intro` replaces the first line.
 */
export function accountSignInPage(opts: { csrf: string; email?: string; error?: string; next?: string; intro?: string }): string {
  return layout(
    'Your account',
    html`<h1>Your account</h1>
<p>${opts.intro ?? 'Sign in to see which apps can use your account.'}</p>
${pageError(opts.error)}
<form method="post" action="/account/sign-in">
<input type="hidden" name="csrf" value="${opts.csrf}">
${opts.next && html`<input type="hidden" name="next" value="${opts.next}">`}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

export function accountPage(opts: { csrf: string; email: string; grants: AccountGrant[]; notice?: string; connections?: SafeHtml; activity?: boolean }): string {
  const grant = (g: AccountGrant) => html`<li><strong>${g.clientName}</strong>
<span class="muted">${join(g.scopes.map((s) => html`<code>${s}</code>`), ' ')}${g.remembered && ' · remembered'}${g.grantedAt && html` · since ${g.grantedAt.slice(0, 10)}`}</span>
<form method="post" action="/account/revoke"><input type="hidden" name="csrf" value="${opts.csrf}"><input type="hidden" name="client" value="${g.clientId}"><button type="submit" class="secondary">Remove access</button></form></li>`;
  const rows = opts.grants.length
    ? html`<ul class="grants">${join(opts.grants.map(grant), '\n')}</ul>`
    : html`<p>No app has access to your account.</p>`;
  return layout(
    'Your account',
    html`<h1>Your account</h1>
<p>Signed in as <strong>${opts.email}</strong>.</p>
${opts.notice && html`<p class="notice" role="status">${opts.notice}</p>`}
<h2>Apps with access</h2>
${rows}
${opts.activity && html`<p><a href="/account/activity">See what apps did with your account</a> (your activity)</p>`}
${opts.connections}
<h2>Sign-in and password</h2>
<p><a href="/account/password">Change password</a></p>
<form method="post" action="/account/sign-out-everywhere">
<input type="hidden" name="csrf" value="${opts.csrf}">
<button type="submit" class="secondary">Sign out everywhere</button>
</form>
<h2>Your data</h2>
<p>Everything stored for your account (notes and every tool's records), as one JSON file.</p>
<form method="post" action="/account/export">
<input type="hidden" name="csrf" value="${opts.csrf}">
<button type="submit" class="secondary">Download my data</button>
</form>
<h2>Delete account</h2>
<p>Delete your account and everything stored for it. You will be asked to confirm.</p>
<p><a href="/account/delete">Delete my account</a></p>`,
  );
}

export function errorPage(opts: { title: string; message: string }): string {
  return layout(
    opts.title,
    html`<h1>${opts.title}</h1>
<p role="alert">${opts.message}</p>
<p>Go back to the app you came from and start signing in again.</p>`,
  );
}

export function messagePage(opts: { title: string; message: string }): string {
  return layout(opts.title, html`<h1>${opts.title}</h1>\n<p>${opts.message}</p>`);
}

export const STYLESHEET = `*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1f;background:#f4f5f7}
main{max-width:26rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.5rem;margin:0 0 .5rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=email],input[type=password],input[type=text]{width:100%;padding:.6rem;font-size:1rem;border:1px solid #8a8f98;border-radius:6px}
input:focus,button:focus{outline:3px solid #4c6ef5;outline-offset:2px}
button{margin-top:1.25rem;padding:.65rem 1.2rem;font-size:1rem;font-weight:600;border:0;border-radius:6px;background:#3451d1;color:#fff;cursor:pointer}
button.secondary{background:#e4e6eb;color:#1b1b1f}
.actions{display:flex;gap:.75rem}
.error{color:#a4161a;background:#fdecea;padding:.5rem .75rem;border-radius:6px}
fieldset{border:0;padding:0;margin:1rem 0 0}
legend{font-weight:600}
ul.scopes{list-style:none;padding:0}
ul.scopes li{display:flex;gap:.5rem;align-items:baseline}
ul.scopes label{display:inline;font-weight:400;margin:0}
code{font-size:.85em;background:#f0f1f4;padding:.1em .3em;border-radius:4px}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
p.check{display:flex;gap:.5rem;align-items:baseline;margin:1rem 0 0}
p.check label{display:inline;font-weight:400;margin:0}
.required{font-size:.85em;color:#5c5f66}
.muted{color:#5c5f66;font-size:.9em}
.notice{color:#1b5e20;background:#e8f5e9;padding:.5rem .75rem;border-radius:6px}
img.logo{float:right;border-radius:8px}
ul.grants{list-style:none;padding:0}
ul.grants li{border-top:1px solid #e4e6eb;padding:.75rem 0}
ul.grants li span{display:block}
ul.grants button{margin-top:.5rem}
a{color:#3451d1}
a:focus{outline:3px solid #4c6ef5;outline-offset:2px}
.hint{color:#5c5f66;font-size:.9em;margin:0 0 .25rem}
.field-error{color:#a4161a;font-weight:600;margin:0 0 .25rem}
input+.field-error{margin-top:1rem}
input[aria-invalid=true]{border:2px solid #a4161a}
button.danger{background:#a4161a}
@media (max-width:30rem){main{margin:0;border-radius:0;box-shadow:none;min-height:100vh}}
`;
