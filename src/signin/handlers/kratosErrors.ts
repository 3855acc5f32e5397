import type { Request, Response } from 'express';
import { KratosError } from '../../kratos/index.js';
import type { Logger } from '../../log/logger.js';
import { pageHandler, send } from '../../web/pageKit.js';
import { errorPage } from '../../web/layout.js';

/** What a person reads when Kratos cannot be reached: nothing was done, try again. */
export const KRATOS_UNAVAILABLE = {
  title: 'Sign-in is unavailable just now',
  message: 'The account service cannot be reached. Nothing was changed; try again in a moment.',
};

/**
 * pageHandler (../pageKit.ts) with IDENTITY=kratos: Kratos's failures become
 * pages too. Kratos unreachable or failing → 503 with Retry-After; a refusal
 * (unknown or forged flow id, a flow started in another browser) → Kratos's
 * status with Kratos's own message. Everything else goes on to pageHandler.
 */
export const kratosPageHandler = (log: Logger): ReturnType<typeof pageHandler> => {
  const base = pageHandler(log);
  return (handler: (req: Request, res: Response) => Promise<void>) =>
    base(async (req, res) => {
      try {
        await handler(req, res);
      } catch (e) {
        if (!(e instanceof KratosError)) throw e;
        if (e.unavailable) {
          log.warn('Kratos unavailable for a sign-in page', { path: req.path, status: e.status, error: e.id });
          res.set('Retry-After', '5');
          return send(res, 503, errorPage(KRATOS_UNAVAILABLE));
        }
        log.info('Kratos refused a sign-in step', { path: req.path, status: e.status, error: e.id });
        send(res, e.status >= 400 && e.status < 500 ? e.status : 400, errorPage({ title: 'Sign-in could not continue', message: e.description || `Kratos answered ${e.status}.` }));
      }
    });
};
