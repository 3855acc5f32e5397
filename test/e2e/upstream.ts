/**
 * A third-party provider for the connected-accounts tests (issue 14): a
 * SECOND real Ory Hydra (the same binary as the e2e stack, its own ports,
 * opaque access tokens), its own tiny login and consent app, and an upstream
 * API whose `GET /me` accepts only that Hydra's tokens (by introspection at
 * its admin API). Nothing here is shared with our server's Hydra.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { ensureHydraBinary, freeLoopbackPort, type RunningHydra, startHydra, type StartHydraOptions } from '../../scripts/hydra.js';
import { type FlowKind, hydraAdminUrls } from '../../src/hydra/endpoints.js';
import { html, type SafeHtml } from '../../src/web/html.js';

export interface UpstreamOptions {
  /** Hydra's access-token lifetime (TTL_ACCESS_TOKEN, e.g. "5s"), so a test can watch a token expire. Default: hydra.yml's 1h. */
  accessTokenTtl?: string;
  /** Accept every consent request at once instead of showing the Allow/Deny page. */
  autoConsent?: boolean;
  /** Keep Hydra's data in a SQLite file, so stopHydra() + startHydraAgain() bring back the same clients and tokens. */
  storage?: 'memory' | 'file';
  /** More Hydra environment variables (override the harness's own). */
  env?: Record<string, string>;
}

export interface RegisteredClient {
  clientId: string;
  /** Empty for tokenEndpointAuthMethod "none". */
  clientSecret: string;
}

export interface Upstream {
  /** The second Hydra (its public and admin URLs, stop()). */
  readonly hydra: RunningHydra;
  /** Exactly as the discovery document and tokens say it. */
  issuer: string;
  publicUrl: string;
  adminUrl: string;
  /** The login/consent app: `<appUrl>/login`, `<appUrl>/consent`. */
  appUrl: string;
  /** The upstream API: GET with `Authorization: Bearer <upstream token>` → 200 { sub, scope, client_id } or 401. */
  apiUrl: string;
  /** Hydra's log lines so far, for failure messages. */
  hydraLog: string[];
  /** An OAuth client at this Hydra (admin API): authorization_code + refresh_token, response type code. */
  registerClient(opts: {
    redirectUris: string[];
    /** Space-separated; include offline_access to be given refresh tokens. */
    scope: string;
    tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  }): Promise<RegisteredClient>;
  /** Revoke every consent `subject` gave and the tokens issued under it, as a person does on the provider's own settings page. */
  revokeConsent(subject: string): Promise<void>;
  /** Take the provider down (its ports close); the login app and API stay up. */
  stopHydra(): Promise<void>;
  /** Bring it back on the same ports (needs storage "file" to keep clients and tokens). */
  startHydraAgain(): Promise<void>;
  stop(): Promise<void>;
}

const LoginQuery = z.object({ login_challenge: z.string().min(1) });
const LoginForm = z.object({ login_challenge: z.string().min(1), username: z.string().trim() });
const ConsentQuery = z.object({ consent_challenge: z.string().min(1) });
const ConsentForm = z.object({ consent_challenge: z.string().min(1), decision: z.enum(['allow', 'deny']) });
const LogoutQuery = z.object({ logout_challenge: z.string().min(1) });
const LoginRequest = z.object({ skip: z.boolean(), subject: z.string(), client: z.object({ client_id: z.string() }).loose() }).loose();
const ConsentRequest = z
  .object({
    skip: z.boolean().optional(),
    subject: z.string(),
    requested_scope: z.array(z.string()).nullish(),
    requested_access_token_audience: z.array(z.string()).nullish(),
    client: z.object({ client_id: z.string(), client_name: z.string().optional() }).loose(),
  })
  .loose();
const Redirect = z.object({ redirect_to: z.string() });
const Introspection = z.object({ active: z.boolean(), sub: z.string().optional(), scope: z.string().optional(), client_id: z.string().optional() }).loose();

/** Start the provider: login app first (Hydra needs its URLs), then Hydra on free loopback ports. */
export async function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const hydraLog: string[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-upstream-'));
  const app = express();
  const appServer = await listen(app);
  const appUrl = `http://127.0.0.1:${(appServer.address() as { port: number }).port}`;

  const binary = await ensureHydraBinary({ log: (l) => process.stderr.write(`[hydra build] ${l}\n`) });
  // Chosen here because discovery must name this Hydra's own token endpoint (hydra.yml names our proxy's).
  const publicPort = await freeLoopbackPort();
  const hydraOptions: StartHydraOptions = {
    binary,
    publicPort,
    dsn: opts.storage === 'file' ? join(dir, 'upstream-hydra.sqlite') : 'memory',
    accessTokenStrategy: 'opaque',
    loginUrl: `${appUrl}/login`,
    consentUrl: `${appUrl}/consent`,
    logoutUrl: `${appUrl}/logout`,
    errorUrl: `${appUrl}/error`,
    secretsSystem: randomBytes(24).toString('hex'),
    log: (line) => hydraLog.push(line),
    env: {
      // Both Hydras sit on 127.0.0.1 and a browser keeps cookies per host: distinct
      // names keep this one's session from overwriting our Hydra's (they would be different sites in real life).
      SERVE_COOKIES_NAMES_SESSION: 'upstream_hydra_session',
      SERVE_COOKIES_NAMES_LOGIN_CSRF: 'upstream_hydra_login_csrf',
      SERVE_COOKIES_NAMES_CONSENT_CSRF: 'upstream_hydra_consent_csrf',
      // No grace period, as most providers: a spent refresh token used again
      // revokes the grant, so a client that loses a rotation is caught.
      OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD: '0s',
      WEBFINGER_OIDC_DISCOVERY_TOKEN_URL: `http://127.0.0.1:${publicPort}/oauth2/token`,
      ...(opts.accessTokenTtl ? { TTL_ACCESS_TOKEN: opts.accessTokenTtl } : {}),
      ...opts.env,
    },
  };
  let hydra: RunningHydra;
  try {
    hydra = await startHydra(hydraOptions);
  } catch (err) {
    await close(appServer);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let hydraUp = true;
  const admin = () => hydraAdminUrls(hydra.adminUrl);

  /** One admin call: JSON or form body, a timeout, and a thrown error with Hydra's answer on failure. */
  async function adminCall(method: string, url: URL, body?: { json?: unknown; form?: Record<string, string> }): Promise<unknown> {
    const res = await fetch(url, {
      method,
      headers: body?.json !== undefined ? { 'content-type': 'application/json' } : body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {},
      body: body?.json !== undefined ? JSON.stringify(body.json) : body?.form ? new URLSearchParams(body.form).toString() : undefined,
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`upstream Hydra admin ${method} ${url.pathname}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
  const flowUrl = (kind: FlowKind, challenge: string, step?: 'accept' | 'reject') => {
    const u = admin().flow(kind, step);
    u.searchParams.set(`${kind}_challenge`, challenge);
    return u;
  };

  app.use(express.urlencoded({ extended: false, limit: '16kb' }));

  app.get('/login', async (req, res) => {
    const q = LoginQuery.safeParse(req.query);
    if (!q.success) return void res.status(400).send(page('Bad request', html`<p>Missing login_challenge.</p>`));
    const login = LoginRequest.parse(await adminCall('GET', flowUrl('login', q.data.login_challenge)));
    if (login.skip) return void acceptLogin(res, q.data.login_challenge, login.subject);
    res.send(loginPage(q.data.login_challenge, login.client.client_id));
  });

  app.post('/login', async (req, res) => {
    const f = LoginForm.safeParse(req.body);
    if (!f.success) return void res.status(400).send(page('Bad request', html`<p>Missing fields.</p>`));
    if (!f.data.username) return void res.status(400).send(loginPage(f.data.login_challenge, undefined, 'Enter a username.'));
    await acceptLogin(res, f.data.login_challenge, f.data.username);
  });

  async function acceptLogin(res: Response, challenge: string, subject: string) {
    const { redirect_to } = Redirect.parse(await adminCall('PUT', flowUrl('login', challenge, 'accept'), { json: { subject, remember: false } }));
    res.redirect(303, redirect_to);
  }

  app.get('/consent', async (req, res) => {
    const q = ConsentQuery.safeParse(req.query);
    if (!q.success) return void res.status(400).send(page('Bad request', html`<p>Missing consent_challenge.</p>`));
    const consent = ConsentRequest.parse(await adminCall('GET', flowUrl('consent', q.data.consent_challenge)));
    if (opts.autoConsent || consent.skip) return void acceptConsent(res, q.data.consent_challenge);
    const scopes = consent.requested_scope ?? [];
    res.send(
      page(
        'Allow access?',
        html`<h1>Allow access?</h1>
<p>${consent.client.client_name || consent.client.client_id} asks for access to your upstream account (${consent.subject}).</p>
<ul>${scopes.map((s) => html`<li>${s}</li>`)}</ul>
<form method="post" action="/consent">
<input type="hidden" name="consent_challenge" value="${q.data.consent_challenge}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`,
      ),
    );
  });

  app.post('/consent', async (req, res) => {
    const f = ConsentForm.safeParse(req.body);
    if (!f.success) return void res.status(400).send(page('Bad request', html`<p>Missing fields.</p>`));
    if (f.data.decision === 'allow') return void acceptConsent(res, f.data.consent_challenge);
    const { redirect_to } = Redirect.parse(
      await adminCall('PUT', flowUrl('consent', f.data.consent_challenge, 'reject'), {
        json: { error: 'access_denied', error_description: 'The person denied the request', status_code: 403 },
      }),
    );
    res.redirect(303, redirect_to);
  });

  /** Grant what was asked for, not remembered: every connect goes through consent again. */
  async function acceptConsent(res: Response, challenge: string) {
    const consent = ConsentRequest.parse(await adminCall('GET', flowUrl('consent', challenge)));
    const { redirect_to } = Redirect.parse(
      await adminCall('PUT', flowUrl('consent', challenge, 'accept'), {
        json: {
          grant_scope: consent.requested_scope ?? [],
          grant_access_token_audience: consent.requested_access_token_audience ?? [],
          remember: false,
        },
      }),
    );
    res.redirect(303, redirect_to);
  }

  app.get('/logout', async (req, res) => {
    const q = LogoutQuery.safeParse(req.query);
    if (!q.success) return void res.status(400).send(page('Bad request', html`<p>Missing logout_challenge.</p>`));
    const { redirect_to } = Redirect.parse(await adminCall('PUT', flowUrl('logout', q.data.logout_challenge, 'accept')));
    res.redirect(303, redirect_to);
  });

  app.get('/error', (req, res) => {
    const error = typeof req.query.error === 'string' ? req.query.error : 'unknown';
    const description = typeof req.query.error_description === 'string' ? req.query.error_description : '';
    res.status(400).send(page('Error', html`<h1>Upstream error</h1><p id="error">${error}</p><p>${description}</p>`));
  });

  /** The upstream API: RFC 6750 bearer, checked by introspection (RFC 7662) at this Hydra only. */
  app.get('/me', async (req: Request, res: Response) => {
    const token = /^Bearer ([^\s]+)$/i.exec(req.get('authorization') ?? '')?.[1];
    const refuse = () => res.status(401).set('WWW-Authenticate', 'Bearer realm="upstream", error="invalid_token"').json({ error: 'invalid_token' });
    if (!token) return void refuse();
    let answer: z.infer<typeof Introspection>;
    try {
      answer = Introspection.parse(await adminCall('POST', admin().introspect, { form: { token } }));
    } catch {
      return void res.status(503).json({ error: 'introspection_unavailable' });
    }
    if (!answer.active || !answer.sub) return void refuse();
    res.json({ sub: answer.sub, scope: answer.scope ?? '', client_id: answer.client_id });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: express.NextFunction) => {
    res.status(502).send(page('Error', html`<h1>Upstream login app error</h1><pre>${err instanceof Error ? err.message : String(err)}</pre>`));
  });

  return {
    get hydra() {
      return hydra;
    },
    issuer: hydra.issuer,
    publicUrl: hydra.publicUrl,
    adminUrl: hydra.adminUrl,
    appUrl,
    apiUrl: `${appUrl}/me`,
    hydraLog,

    async registerClient({ redirectUris, scope, tokenEndpointAuthMethod = 'client_secret_basic' }) {
      const created = z
        .object({ client_id: z.string(), client_secret: z.string().optional() })
        .loose()
        .parse(
          await adminCall('POST', admin().clients, {
            json: {
              client_name: 'hydra-mcp connections test',
              grant_types: ['authorization_code', 'refresh_token'],
              response_types: ['code'],
              redirect_uris: redirectUris,
              scope,
              token_endpoint_auth_method: tokenEndpointAuthMethod,
            },
          }),
        );
      return { clientId: created.client_id, clientSecret: created.client_secret ?? '' };
    },

    async revokeConsent(subject) {
      const u = new URL(admin().consentSessions);
      u.searchParams.set('subject', subject);
      u.searchParams.set('all', 'true');
      await adminCall('DELETE', u);
    },

    async stopHydra() {
      await hydra.stop();
      hydraUp = false;
    },

    async startHydraAgain() {
      if (hydraUp) return;
      hydra = await startHydra({ ...hydraOptions, publicPort: Number(new URL(hydra.publicUrl).port), adminPort: Number(new URL(hydra.adminUrl).port) });
      hydraUp = true;
    },

    async stop() {
      await hydra.stop();
      await close(appServer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function loginPage(challenge: string, clientId: string | undefined, error?: string): string {
  return page(
    'Sign in to Upstream',
    html`<h1>Sign in to Upstream</h1>
${clientId && html`<p>to continue to ${clientId}</p>`}
${error && html`<p class="error" role="alert">${error}</p>`}
<form method="post" action="/login">
<input type="hidden" name="login_challenge" value="${challenge}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username">
<button type="submit">Sign in</button>
</form>`,
  );
}

function page(title: string, body: SafeHtml): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`.text;
}

function listen(app: express.Express): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(server)));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
