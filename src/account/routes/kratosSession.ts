import type { Request, Response } from 'express';
import type { BrowserFlowKind, Kratos, Session } from '../../kratos/index.js';
import { identityAsUser, kratosAccountDirectory } from '../kratosDirectory.js';
import type { AccountSession, DeleteProof } from './context.js';

/** Deleting the account needs a sign-in this recent (Kratos's privileged_session_max_age, kratos/kratos.yml). */
const PRIVILEGED_SECONDS = 15 * 60;

export interface KratosSession extends AccountSession {
  signInUrl(returnTo: string): string;
  /** Kratos's browser flow of `kind` (rendered by /kratos/…), coming back to our `returnTo` path. */
  flowUrl(kind: BrowserFlowKind, returnTo: string, opts?: { refresh?: boolean }): string;
  /** Whether the session's sign-in is recent enough to delete the account. */
  recentSignIn(req: Request): Promise<boolean>;
}

/**
 * IDENTITY=kratos: the person is whoever Kratos's session says (no cookie of
 * ours); signing in, the password and "sign out everywhere" go through
 * Kratos; `publicBaseUrl` is where Kratos sends the browser back to.
 */
export function kratosSession(o: { client: Kratos; publicBaseUrl: URL; now: () => number }): KratosSession {
  const { client, now } = o;
  // One whoami per request, however many checks of the person a handler makes.
  const sessions = new WeakMap<Request, Promise<Session | undefined>>();
  const session = (req: Request) => {
    let s = sessions.get(req);
    if (!s) sessions.set(req, (s = client.public.whoami(req.headers.cookie)));
    return s;
  };
  const ourUrl = (path: string) => new URL(path.replace(/^\//, ''), `${o.publicBaseUrl.href.replace(/\/+$/, '')}/`).href;
  const flowUrl = (kind: BrowserFlowKind, returnTo: string, opts?: { refresh?: boolean }) => client.public.browserFlowUrl(kind, ourUrl(returnTo), opts).href;
  return {
    sub: async (req) => (await session(req))?.identity.id,
    async user(req) {
      const s = await session(req);
      return s && identityAsUser(s.identity);
    },
    directory: kratosAccountDirectory(client.admin),
    signInUrl: (returnTo) => flowUrl('login', returnTo),
    // Kratos's sessions of the person, this browser's included.
    endSessions: async (sub) => void (await client.admin.revokeSessions(sub)),
    flowUrl,
    async recentSignIn(req) {
      const s = await session(req);
      const at = s?.authenticated_at ? Date.parse(s.authenticated_at) : NaN;
      return s !== undefined && now() - at <= PRIVILEGED_SECONDS * 1000;
    },
  };
}

/** Deleting the account with Kratos: a recent sign-in stands for the password; a stale one goes through Kratos's login again, then back. */
export function recentSignInProof(session: KratosSession): DeleteProof {
  const reauthenticate = (res: Response) => res.redirect(303, session.flowUrl('login', '/account/delete', { refresh: true }));
  return {
    askPassword: false,
    async recent(req, res) {
      if (await session.recentSignIn(req)) return true;
      reauthenticate(res);
      return false;
    },
    check: async () => undefined,
  };
}
