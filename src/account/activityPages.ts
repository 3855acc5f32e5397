import type { AuditEvent } from '../store/auditStore.js';
import { html, join } from '../web/html.js';
import { layout } from '../web/layout.js';

/** What each kind of record says to the person, in plain words. */
const KIND_TEXT: Record<AuditEvent['kind'], string> = {
  tool_call: 'Used tool',
  sign_in_ok: 'Signed in',
  sign_in_failed: 'Failed sign-in attempt',
  consent_granted: 'Gave access',
  consent_revoked: 'Removed access',
  client_registered: 'App registered',
  credential_used: 'Used a connected account',
};

const OUTCOME_TEXT: Partial<Record<AuditEvent['outcome'], string>> = {
  ok: 'done',
  error: 'failed',
  insufficient_scope: 'refused: the app lacks a permission',
  revoked: 'refused: access was withdrawn',
  rate_limited: 'refused: too many requests',
  invalid_input: 'refused: malformed request',
  unknown_tool: 'refused: no such tool',
  denied: 'refused',
  refused: 'refused',
};

/**
 * /account/activity: the person's own tool calls and account events, newest
 * first, one page at a time. Every value goes through `html` (escaped); the
 * app name is whatever the app registered, so it is never trusted as markup.
 */
export function activityPage(opts: { email: string; events: AuditEvent[]; nextHref?: string; firstPage: boolean }): string {
  const row = (e: AuditEvent) => {
    const app = e.clientName || e.clientId;
    const what = e.kind === 'tool_call' ? html`${KIND_TEXT[e.kind]} <code>${e.tool}</code>` : html`${KIND_TEXT[e.kind]}`;
    return html`<li><strong>${what}</strong>
<span class="muted"><time datetime="${e.at}">${e.at.replace('T', ' ').slice(0, 19)} UTC</time>${app && html` · by <span class="app">${app}</span>`} · ${OUTCOME_TEXT[e.outcome] ?? e.outcome}${e.detail && html` · ${e.detail}`}</span></li>`;
  };
  const list = opts.events.length
    ? html`<ul class="grants activity">${join(opts.events.map(row), '\n')}</ul>`
    : html`<p>${opts.firstPage ? 'Nothing recorded yet.' : 'No older activity.'}</p>`;
  return layout(
    'Your activity',
    html`<h1>Your activity</h1>
<p>Signed in as <strong>${opts.email}</strong>. What apps did with your account, and your sign-ins and permissions, newest first. Records are kept for a limited time.</p>
${list}
<nav>${opts.nextHref && html`<p><a href="${opts.nextHref}" rel="next">Older activity</a></p>`}${!opts.firstPage && html`<p><a href="/account/activity">Newest activity</a></p>`}<p><a href="/account">Back to your account</a></p></nav>`,
  );
}
