import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { HydraError } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import { errorPage } from './layout.js';

/** Bad form or query input; shown as a 400 page, Hydra is never called. */
export class BadRequest extends Error {}

export function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new BadRequest(`The ${what} is missing or malformed.`);
  return r.data;
}

/**
 * Every page's security headers. No script runs and nothing loads from
 * elsewhere except client logos (any https origin); styles only from our
 * stylesheet, so no inline style or script is ever needed.
 *
 * No `form-action`, on purpose. Chromium (and reportedly Safari) checks it
 * against every redirect that follows a form submission, not only the form's
 * action (whether it should is still open: w3c/webappsec-csp#8), and our forms
 * exist to start such a chain: POST /login → Hydra → /consent (answered at
 * once when consent is remembered or the client trusted) → Hydra → the
 * client's redirect URI → and, for some clients, onward to a custom scheme
 * (an https callback handing over to claude://, fastmcp#3372). We cannot list
 * targets we never see, and a partial list breaks sign-in in Chrome alone
 * (fastmcp#2302, kanidm#3354; reproduced with Debian's Chromium 148: a listed
 * redirect target that redirects on to an unlisted origin is blocked). form-action does not fall back to default-src;
 * with no script and every value escaped, what is lost is defence in depth
 * against injected markup only.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  // For browsers without frame-ancestors.
  'X-Frame-Options': 'DENY',
  // Pages carry challenges and CSRF tokens: never cache them.
  'Cache-Control': 'no-store',
};

export function send(res: Response, status: number, html: string): void {
  res.status(status).set(SECURITY_HEADERS).type('html').send(html);
}

/** Wrap page handlers so Hydra and input failures become readable pages, never stack traces. */
export const pageHandler = (log: Logger) => (handler: (req: Request, res: Response) => Promise<void>) => {
  return (req: Request, res: Response, _next: NextFunction) => {
    handler(req, res).catch((e: unknown) => {
      if (e instanceof BadRequest) return send(res, 400, errorPage({ title: 'Bad request', message: e.message }));
      if (e instanceof HydraError && !e.unavailable) {
        // Unknown, forged, expired and used challenges get 4xx codes that vary by case
        // and Hydra version: to the person they all mean "start again".
        log.info('sign-in request refused by Hydra', { path: req.path, status: e.status, error: e.error });
        return send(res, 410, errorPage({ title: 'This sign-in request is no longer valid', message: 'It has expired or was already used. Start again from your app.' }));
      }
      if (e instanceof HydraError) {
        log.warn('Hydra unavailable for a sign-in page', { path: req.path, status: e.status, error: e.error });
        res.set('Retry-After', '5');
        return send(res, 503, errorPage({ title: 'Sign-in is unavailable', message: 'The authorization server cannot be reached. Try again in a moment.' }));
      }
      log.error('page failed', { path: req.path, error: e });
      send(res, 500, errorPage({ title: 'Something went wrong', message: 'The error was logged.' }));
    });
  };
};
