/**
 * The frame every page shares (sign-in, consent, account): plain HTML that
 * works without JavaScript, one stylesheet, and the error and message pages.
 * Every page is built with `html` (./html.ts), so every interpolated value is
 * escaped unless it is itself an `html` fragment.
 */
import { html, type SafeHtml } from './html.js';

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

/** A form's error line, read out by screen readers (empty when there is none). */
export const pageError = (error: string | undefined) => error && html`<p class="error" role="alert">${error}</p>`;

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
