import express from 'express';
import { z } from 'zod';
import { CsrfField } from '../../web/csrf.js';
import { parse } from '../../web/pageKit.js';
import { type AccountContext, requireSession } from './context.js';

const RevokeForm = z.object({ csrf: CsrfField, client: z.string().min(1).max(255) });

/** POST /account/revoke: withdraw an app's consent; Hydra then revokes that app's tokens. */
export function revokeConsentRoute(ctx: AccountContext): express.Router {
  const { hydra, page, form, log } = ctx;
  const router = express.Router();
  router.post('/account/revoke', form, page(async (req, res) => {
    const input = parse(RevokeForm, req.body, 'form');
    const sub = await requireSession(ctx, req, input.csrf);
    await hydra.revokeConsentSessions(sub, input.client);
    log.info('consent withdrawn by user', { sub, client_id: input.client });
    ctx.audit?.({ kind: 'consent_revoked', outcome: 'ok', sub, clientId: input.client });
    res.redirect(303, '/account?done=revoked');
  }));
  return router;
}
