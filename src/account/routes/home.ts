import express from 'express';
import type { ConnectFlow } from '../../connections/connectFlow.js';
import { send } from '../../web/pageKit.js';
import { accountPage, accountSignInPage } from '../accountPages.js';
import { connectionsSection } from '../connectionPages.js';
import { connectionFormToken } from '../connectionRoutes.js';
import { type AccountContext, CSRF_BINDING } from './context.js';

export interface HomeOptions {
  /** Connected accounts: their section on the page; absent when no provider is configured. */
  connections?: ConnectFlow;
  /** Whether the page links to /account/activity (the audit trail is on). */
  activity: boolean;
}

/** What `?done=` says on the page after an action, by name; any other value says nothing. */
const NOTICES: Record<string, string> = {
  revoked: 'Access removed. The app must ask you again to use your account.',
  password: 'Password changed. Every other sign-in has ended.',
  disconnected: 'Disconnected. The service was told to revoke the access it gave.',
  'disconnected-not-revoked':
    'Disconnected here, but the service could not be told just now: tools can no longer use it, and you may also remove the access in that service\'s own settings.',
  settings: 'Your changes are saved. A new password ends every other sign-in.',
  'password-sessions-pending':
    'Password changed, but other sign-ins could not be ended just now (the authorization server did not answer). Use "Sign out everywhere" below in a moment.',
};

/** GET /account: the apps holding a consent of the person, each action under its own heading; signed out, the way to sign in. */
export function homeRoute(ctx: AccountContext, options: HomeOptions): express.Router {
  const { hydra, session, csrf, page } = ctx;
  const router = express.Router();
  router.get('/account', page(async (req, res) => {
    const user = await session.user(req);
    // With Kratos, signing in is Kratos's login flow, which comes back here.
    if (!user && session.signInUrl) return res.redirect(303, session.signInUrl('/account'));
    const token = csrf.tokenFor(req, res, CSRF_BINDING);
    if (!user) return send(res, 200, accountSignInPage({ csrf: token }));
    const sessions = await hydra.listConsentSessions(user.id);
    const grants = sessions.map((s) => ({
      clientId: s.consent_request?.client?.client_id ?? '',
      clientName: s.consent_request?.client?.client_name || s.consent_request?.client?.client_id || 'Unknown app',
      scopes: s.grant_scope ?? [],
      grantedAt: s.handled_at,
      remembered: s.remember === true,
    }));
    // One line per app: Hydra keeps a consent per authorization.
    const byClient = [...new Map(grants.filter((g) => g.clientId).map((g) => [g.clientId, g])).values()];
    const done = typeof req.query.done === 'string' ? req.query.done : undefined;
    const notice = done && Object.hasOwn(NOTICES, done) ? NOTICES[done] : undefined;
    const connections = options.connections
      ? connectionsSection(await options.connections.list(user.id), (provider) => connectionFormToken(csrf, req, res, user.id, provider))
      : undefined;
    send(res, 200, accountPage({ csrf: token, email: user.email, grants: byClient, notice, connections, activity: options.activity }));
  }));
  return router;
}
