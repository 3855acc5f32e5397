import type express from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { AuditStore } from '../store/auditStore.js';
import { type CursorKey, InvalidCursorError } from '../tools/cursor.js';
import { activityPage } from './activityPages.js';
import { BadRequest, send } from '../web/pageKit.js';
import { accountSignInPage } from './accountPages.js';
import type { UserStore } from './userStore.js';

/** Reads a person's audit records (AuditStore.pageForSubject). */
export type ActivityReader = Pick<AuditStore, 'pageForSubject'>;

export interface ActivityRoutesOptions {
  activity: ActivityReader;
  /** Signs the page cursors, bound to the person (the tools' cursor key: its own label below). */
  cursorKey: CursorKey;
  users: Pick<UserStore, 'findById'>;
  /** The signed-in person of the account session (AccountSession, src/account/routes/context.ts). */
  sessionSub(req: Request): Promise<string | undefined>;
  /** A fresh CSRF token for the account sign-in form, when the person is not signed in. */
  signInToken(req: Request, res: Response): string;
  /** Where a browser without a session goes instead of our sign-in form (IDENTITY=kratos: Kratos's login flow). */
  signIn?: (res: Response) => void;
  page: (handler: (req: Request, res: Response) => Promise<void>) => express.RequestHandler;
}

/** Records per page by default, and the most a page may ask for. */
const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 100;
/** The cursor's purpose label: a cursor of a tool's list is refused here, and the other way round. */
const CURSOR_SCOPE = 'account/activity';

const ActivityQuery = z.object({
  // Digits only: "-1", "1e3", "abc" and "" are refused, not coerced.
  limit: z
    .string()
    .regex(/^\d{1,4}$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_LIMIT))
    .optional(),
  after: z.string().max(512).optional(),
});
const Position = z.object({ at: z.string().max(40), id: z.string().max(64) }).strict();

/**
 * GET /account/activity: the signed-in person's audit records, newest first.
 * Every read is keyed by the session's `sub`; the page cursor is signed and
 * bound to that `sub`, so a cursor from another person, a tool's cursor or an
 * altered one is a 400 and never reads a row. `limit` must be 1–100.
 */
export function addActivityRoutes(router: express.Router, o: ActivityRoutesOptions): void {
  router.get('/account/activity', o.page(async (req, res) => {
    const sub = await o.sessionSub(req);
    const user = sub ? await o.users.findById(sub) : undefined;
    if ((!sub || !user) && o.signIn) return o.signIn(res);
    if (!sub || !user) return send(res, 200, accountSignInPage({ csrf: o.signInToken(req, res), intro: 'Sign in to see your activity.' }));
    const r = ActivityQuery.safeParse(req.query);
    if (!r.success) throw new BadRequest(`The page size (limit) must be a whole number from 1 to ${MAX_LIMIT}.`);
    const cursors = o.cursorKey.cursorsFor(sub, CURSOR_SCOPE);
    let after: z.infer<typeof Position> | undefined;
    try {
      after = cursors.open(r.data.after, Position);
    } catch (e) {
      if (e instanceof InvalidCursorError) throw new BadRequest('The page link is not valid for your account. Start again from the newest activity.');
      throw e;
    }
    const limit = r.data.limit ?? DEFAULT_LIMIT;
    const page = await o.activity.pageForSubject(sub, { limit, ...(after ? { after } : {}) });
    const nextHref = page.next && `/account/activity?${new URLSearchParams({ after: cursors.seal({ ...page.next }), ...(r.data.limit ? { limit: String(limit) } : {}) })}`;
    send(res, 200, activityPage({ email: user.email, events: page.events, firstPage: !after, ...(nextHref ? { nextHref } : {}) }));
  }));
}
