/**
 * The self-service pages of /account: change password and delete account.
 * Accessibility, as the WAI form tutorials describe it: every input has a
 * <label for>; a hint or an error is tied to its input with
 * aria-describedby, an erring input is aria-invalid and takes the focus
 * (autofocus: the pages run no script), a page-wide error is role="alert",
 * and the page title starts with "Error:" so it is heard first. Forms are
 * `novalidate`: the server's messages, tied to their fields, are the one way
 * errors are told.
 */
import { html, join, type SafeHtml } from '../web/html.js';
import { MIN_PASSWORD } from './userStore.js';
import { layout, pageError } from '../web/layout.js';

interface PasswordInput {
  id: string;
  label: string;
  autocomplete: 'current-password' | 'new-password';
  hint?: string;
  error?: string;
  autofocus?: boolean;
}

function passwordInput(f: PasswordInput): SafeHtml {
  const describedBy = [f.error && `${f.id}-error`, f.hint && `${f.id}-hint`].filter(Boolean).join(' ');
  return html`<label for="${f.id}">${f.label}</label>
${f.hint && html`<p class="hint" id="${f.id}-hint">${f.hint}</p>`}
${f.error && html`<p class="field-error" id="${f.id}-error">${f.error}</p>`}
<input id="${f.id}" name="${f.id}" type="password" autocomplete="${f.autocomplete}" required${describedBy && html` aria-describedby="${describedBy}"`}${f.error && html` aria-invalid="true"`}${f.autofocus && html` autofocus`}>`;
}

const titled = (title: string, errors: unknown[]) => (errors.some(Boolean) ? `Error: ${title}` : title);

/** Errors for one field each, or for the whole form (`form`: e.g. too many attempts). */
export interface ChangePasswordErrors {
  current?: string;
  next?: string;
  repeat?: string;
  form?: string;
}

export function changePasswordPage(opts: { csrf: string; email: string; errors?: ChangePasswordErrors }): string {
  const e = opts.errors ?? {};
  // The first erring field takes the focus; with no error, the first field.
  const focus = e.current || !(e.next || e.repeat) ? 'current' : e.next ? 'next' : 'repeat';
  return layout(
    titled('Change password', [e.current, e.next, e.repeat, e.form]),
    html`<h1>Change password</h1>
<p>Signed in as <strong>${opts.email}</strong>.</p>
${pageError(e.form)}
<p>Changing it ends your sign-ins everywhere else (other browsers and devices must sign in again). Apps you allowed keep their access; remove it on <a href="/account">your account page</a>.</p>
<form method="post" action="/account/password" novalidate>
<input type="hidden" name="csrf" value="${opts.csrf}">
${passwordInput({ id: 'current-password', label: 'Current password', autocomplete: 'current-password', error: e.current, autofocus: focus === 'current' })}
${passwordInput({
  id: 'new-password',
  label: 'New password',
  autocomplete: 'new-password',
  hint: `At least ${MIN_PASSWORD} characters. A phrase of a few words is easy to remember and hard to guess.`,
  error: e.next,
  autofocus: focus === 'next',
})}
${passwordInput({ id: 'repeat-password', label: 'Repeat the new password', autocomplete: 'new-password', error: e.repeat, autofocus: focus === 'repeat' })}
<button type="submit">Change password</button>
</form>
<p><a href="/account">Back to your account</a></p>`,
  );
}

export interface DeleteAccountErrors {
  password?: string;
  confirm?: string;
  form?: string;
}

/**
 * The confirmation step: what deleting does, a way to keep a copy first, and
 * the form that does it (password and an "I understand" box, both required).
 */
/** `askPassword: false` with Kratos: it checked the password moments ago (a recent sign-in is required instead). */
export function deleteAccountPage(opts: { csrf: string; exportCsrf: string; email: string; errors?: DeleteAccountErrors; askPassword?: boolean }): string {
  const e = opts.errors ?? {};
  const confirmDescribedBy = ['confirm-hint', e.confirm && 'confirm-error'].filter(Boolean).join(' ');
  return layout(
    titled('Delete your account', [e.password, e.confirm, e.form]),
    html`<h1>Delete your account</h1>
<p>Signed in as <strong>${opts.email}</strong>.</p>
${pageError(e.form)}
<p>Deleting your account takes effect at once and cannot be undone:</p>
<ul>
<li>every app you allowed loses access, including the tokens it holds now;</li>
<li>your notes and every tool's records are deleted;</li>
<li>your sign-ins end, here and on every other device.</li>
</ul>
<h2>Keep a copy first</h2>
<form method="post" action="/account/export">
<input type="hidden" name="csrf" value="${opts.exportCsrf}">
<button type="submit" class="secondary">Download my data</button>
</form>
<h2>Confirm</h2>
<form method="post" action="/account/delete" novalidate>
<input type="hidden" name="csrf" value="${opts.csrf}">
${opts.askPassword !== false && passwordInput({ id: 'password', label: 'Your password', autocomplete: 'current-password', error: e.password, autofocus: !!e.password })}
${e.confirm && html`<p class="field-error" id="confirm-error">${e.confirm}</p>`}
<p class="check"><input type="checkbox" id="confirm" name="confirm" value="yes" required aria-describedby="${confirmDescribedBy}"${e.confirm && html` aria-invalid="true"`}${!e.password && e.confirm && html` autofocus`}> <label for="confirm">I understand that my account and its data will be deleted for good</label></p>
<p class="hint" id="confirm-hint">Nothing is deleted until you press the button below with this box ticked.</p>
<button type="submit" class="danger">Delete my account</button>
</form>
<p><a href="/account">Cancel and go back to your account</a></p>`,
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
