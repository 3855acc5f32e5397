/**
 * Pages that render Ory Kratos's self-service flows (IDENTITY=kratos). Kratos
 * has no UI: a flow is a form description (`ui.nodes`: inputs with labels and
 * messages, the hidden csrf_token among them) and where to post it
 * (`ui.action`, Kratos's public URL). The browser posts straight to Kratos;
 * we only draw the form. Built with `html` (./html.ts): every value Kratos
 * sends, its messages included, is escaped.
 */
import type { SelfServiceFlow, UiNode, UiText } from '../kratos/index.js';
import { html, join, type SafeHtml } from '../web/html.js';
import { layout } from '../web/layout.js';

const TITLES = { login: 'Sign in', registration: 'Create an account' } as const;

export interface KratosFlowPageOptions {
  kind: 'login' | 'registration';
  flow: SelfServiceFlow;
  /** Starts the other flow (registration from login, login from registration), keeping where to return. */
  otherFlowUrl: string;
}

export function kratosFlowPage({ kind, flow, otherFlowUrl }: KratosFlowPageOptions): string {
  const title = TITLES[kind];
  const other =
    kind === 'login'
      ? html`<p class="muted">No account yet? <a href="${otherFlowUrl}">Create an account</a></p>`
      : html`<p class="muted">Have an account already? <a href="${otherFlowUrl}">Sign in</a></p>`;
  return layout(
    title,
    html`<h1>${title}</h1>
${messages(flow.ui.messages ?? [])}
<form method="${(flow.ui.method || 'POST').toUpperCase()}" action="${flow.ui.action}">
${join(flow.ui.nodes.map((node, i) => renderNode(node, `kratos-field-${i}`)), '\n')}
</form>
${other}`,
  );
}

/** The settings flow's sections, each its own form (Kratos tells them apart by the submit button's `method`). */
const SETTINGS_SECTIONS = [
  { group: 'profile', title: 'Your details' },
  { group: 'password', title: 'Change your password' },
] as const;

/**
 * Kratos's settings flow (/kratos/settings): one form per section, each with
 * the flow's hidden fields (the CSRF token), posted to Kratos like the others.
 */
export function kratosSettingsPage({ flow, accountUrl }: { flow: SelfServiceFlow; accountUrl: string }): string {
  const hidden = flow.ui.nodes.filter((n) => n.group === 'default');
  const method = (flow.ui.method || 'POST').toUpperCase();
  const sections = SETTINGS_SECTIONS.map(({ group, title }) => ({ group, title, nodes: flow.ui.nodes.filter((n) => n.group === group) })).filter((x) => x.nodes.length > 0);
  return layout(
    'Account settings',
    html`<h1>Account settings</h1>
${messages(flow.ui.messages ?? [])}
${join(
  sections.map(
    ({ group, title, nodes }) => html`<h2>${title}</h2>
<form method="${method}" action="${flow.ui.action}">
${join([...hidden, ...nodes].map((node, i) => renderNode(node, `kratos-${group}-${i}`)), '\n')}
</form>`,
  ),
  '\n',
)}
<p class="muted"><a href="${accountUrl}">Back to your account</a></p>`,
  );
}

/** Flow-level messages: errors as alerts, the rest as notices. */
function messages(list: readonly UiText[]): SafeHtml {
  return join(
    list.map((m) =>
      m.type === 'error' ? html`<p class="error" role="alert" data-kratos-id="${m.id}">${m.text}</p>` : html`<p class="notice" role="status" data-kratos-id="${m.id}">${m.text}</p>`,
    ),
    '\n',
  );
}

/** Field-level messages, under their input (errors are announced and marked on the input). */
function fieldMessages(node: UiNode, id: string): SafeHtml {
  return join(
    node.messages.map((m, j) =>
      html`<p class="${m.type === 'error' ? 'field-error' : 'hint'}" id="${id}-msg-${j}" data-kratos-id="${m.id}">${m.text}</p>`,
    ),
    '\n',
  );
}

const valueOf = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');

function renderNode(node: UiNode, id: string): SafeHtml {
  const a = node.attributes;
  const label = node.meta.label?.text;
  switch (node.type) {
    case 'input':
      break;
    case 'text':
      return html`<p>${label && html`<strong>${label}</strong> `}${a.text?.text}</p>`;
    case 'a': {
      // Only http(s) links: a javascript: URL must never become clickable.
      const href = a.href && /^https?:\/\//i.test(a.href) ? a.href : undefined;
      return href ? html`<p><a href="${href}">${a.title?.text ?? href}</a></p>` : html``;
    }
    default:
      // img and script nodes (TOTP, WebAuthn) belong to methods we do not enable; the page runs no script.
      return html``;
  }
  const type = (a.type ?? 'text').toLowerCase();
  const name = a.name ?? '';
  const value = valueOf(a.value);
  if (type === 'hidden') return html`<input type="hidden" name="${name}" value="${value}">`;
  if (type === 'submit' || type === 'button') {
    return html`${fieldMessages(node, id)}<button type="submit" name="${name}" value="${value}" ${a.disabled && html`disabled`}>${label ?? 'Continue'}</button>`;
  }
  const invalid = node.messages.some((m) => m.type === 'error');
  const describedBy = node.messages.map((_, j) => `${id}-msg-${j}`).join(' ');
  const common = html`id="${id}" name="${name}" ${a.required && html`required`} ${a.disabled && html`disabled`} ${invalid && html`aria-invalid="true"`} ${describedBy && html`aria-describedby="${describedBy}"`}`;
  if (type === 'checkbox') {
    return html`<p class="check"><input type="checkbox" ${common} value="true" ${a.value === true && html`checked`}> <label for="${id}">${label ?? name}</label></p>
${fieldMessages(node, id)}`;
  }
  // Kratos never sends a password back; other values (the email typed) are kept after an error.
  return html`<label for="${id}">${label ?? name}</label>
<input type="${type}" ${common} ${type !== 'password' && html`value="${value}"`} ${a.autocomplete && html`autocomplete="${a.autocomplete}"`} ${a.pattern && html`pattern="${a.pattern}"`}>
${fieldMessages(node, id)}`;
}
