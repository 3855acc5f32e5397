import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { HydraError } from '../auth/hydraAdmin.js';
import type { Logger } from '../log/logger.js';
import { errorPage } from './pages.js';

/** Bad form or query input; shown as a 400 page, Hydra is never called. */
export class BadRequest extends Error {}

export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new BadRequest(`The ${what} is missing or malformed.`);
  return r.data;
}

/**
 * Send a page with the security headers every page carries. form-action lists
 * where a submission may lead, redirects included (CSP3 §6.3.1): ourselves,
 * Hydra, and after consent the client's redirect URI. Client logos may come
 * from any https origin; nothing else loads from elsewhere, and no script runs.
 */
export function send(res: Response, status: number, html: string, formTargets: string[] = []): void {
  const formAction = ["'self'", ...new Set(formTargets)].join(' ');
  res
    .status(status)
    .set({
      'Content-Security-Policy': `default-src 'none'; style-src 'self'; img-src 'self' https:; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    })
    .type('html')
    .send(html);
}

/** Wrap page handlers so Hydra and input failures become readable pages, never stack traces. */
export const pageHandler = (log: Logger) => (handler: (req: Request, res: Response) => Promise<void>) => {
  return (req: Request, res: Response, _next: NextFunction) => {
    handler(req, res).catch((e: unknown) => {
      if (e instanceof BadRequest) return send(res, 400, errorPage({ title: 'Bad request', message: e.message }));
      if (e instanceof HydraError && !e.unavailable) {
        return send(res, 410, errorPage({ title: 'This sign-in request is no longer valid', message: 'It has expired or was already used. Start again from your app.' }));
      }
      if (e instanceof HydraError) {
        res.set('Retry-After', '5');
        return send(res, 503, errorPage({ title: 'Sign-in is unavailable', message: 'The authorization server cannot be reached. Try again in a moment.' }));
      }
      log.error('page failed', { path: req.path, error: e });
      send(res, 500, errorPage({ title: 'Something went wrong', message: 'The error was logged.' }));
    });
  };
};
