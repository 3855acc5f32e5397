import type { RequestHandler } from 'express';
import { z } from 'zod';
import { send } from '../../web/pageKit.js';
import { errorPage } from '../../web/layout.js';

// Hydra's redirect to urls.error (RFC 6749 §4.1.2.1 error fields); shown escaped, bounded.
const OAuthErrorQuery = z.object({
  error: z.string().min(1).max(100).catch('unknown_error'),
  error_description: z.string().max(500).optional().catch(undefined),
});

/** urls.error: Hydra sends the browser here when a flow cannot continue. */
export function oauthErrorHandler(): RequestHandler {
  return (req, res) => {
    const q = OAuthErrorQuery.safeParse(req.query);
    const { error, error_description: description } = q.success ? q.data : { error: 'unknown_error', error_description: undefined };
    send(res, 400, errorPage({ title: 'Sign-in could not continue', message: `${error}${description ? `: ${description}` : ''}` }));
  };
}
