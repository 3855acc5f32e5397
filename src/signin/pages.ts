/** The pages of Hydra's login, consent and logout steps (src/signin/handlers/), in the shared layout. */
import { html, join } from '../web/html.js';
import { layout, pageError } from '../web/layout.js';

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
