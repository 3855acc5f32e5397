/** Pages of connected accounts (issue 14), built with the escaping `html` template like every page. */
import type { ConnectionView } from '../connections/connectFlow.js';
import { html, join, type SafeHtml } from '../web/html.js';
import { layout } from '../web/layout.js';

export function connectPage(opts: { csrf: string; provider: string; displayName: string; fromApp: boolean; e?: string }): string {
  return layout(
    `Connect ${opts.displayName}`,
    html`<h1>Connect ${opts.displayName}</h1>
<p>${opts.fromApp ? html`An app you use asked to act on your <strong>${opts.displayName}</strong> account through this server.` : html`Let tools on this server act on your <strong>${opts.displayName}</strong> account.`}</p>
<p>You will sign in at ${opts.displayName} and choose what to allow. You can disconnect at any time on your account page.</p>
<form method="post" action="/account/connections/${opts.provider}/connect">
<input type="hidden" name="csrf" value="${opts.csrf}">
${opts.e && html`<input type="hidden" name="e" value="${opts.e}">`}
<div class="actions"><button type="submit">Connect ${opts.displayName}</button></div>
</form>
<p><a href="/account">Not now</a></p>`,
  );
}

export function connectDonePage(opts: { displayName: string }): string {
  return layout(
    `${opts.displayName} connected`,
    html`<h1>${opts.displayName} connected</h1>
<p role="status">Your ${opts.displayName} account is connected. Go back to your app: a call that was waiting for this continues on its own.</p>
<p><a href="/account">Your account</a></p>`,
  );
}

const STATUS: Record<ConnectionView['status'], string> = {
  connected: 'connected',
  needs_reconnect: 'access lost: connect again',
  not_connected: 'not connected',
};

/** The "Connected services" section of the account page; `token(provider)` gives each form's CSRF token. */
export function connectionsSection(views: readonly ConnectionView[], token: (provider: string) => string): SafeHtml {
  if (views.length === 0) return html``;
  const row = (v: ConnectionView) => html`<li><strong>${v.displayName}</strong>
<span class="muted">${STATUS[v.status]}${v.since !== undefined && html` · since ${new Date(v.since).toISOString().slice(0, 10)}`}</span>
${v.status !== 'connected' && html`<p><a href="/account/connections/${v.provider}/connect">Connect ${v.displayName}</a></p>`}
${v.status !== 'not_connected' && html`<form method="post" action="/account/connections/${v.provider}/disconnect"><input type="hidden" name="csrf" value="${token(v.provider)}"><button type="submit" class="secondary">Disconnect</button></form>`}</li>`;
  return html`<h2>Connected services</h2>
<p class="muted">Accounts elsewhere that tools here may act on for you.</p>
<ul class="grants">${join(views.map(row), '\n')}</ul>`;
}
