import { z } from 'zod';
import type { Request, Response } from 'express';
import { type CookieOptions, randomToken, readCookie, setCookie, type Signer } from './cookies.js';
import { BadRequest } from './pageKit.js';

const COOKIE = 'hmcp_csrf';

/**
 * CSRF protection for our forms (OWASP "signed double-submit cookie"): the
 * browser holds a random cookie; each form carries an HMAC of that cookie and
 * what the form acts on (a Hydra challenge, or "account"). A page on another
 * site can neither read the cookie nor forge the MAC.
 */
export class Csrf {
  constructor(
    private readonly signer: Signer,
    private readonly cookie: CookieOptions,
  ) {}

  /** The token to embed in a form about `binding`; sets the cookie if the browser has none. */
  tokenFor(req: Request, res: Response, binding: string): string {
    let seed = readCookie(req, COOKIE);
    if (!seed || seed.length < 16) {
      seed = randomToken();
      setCookie(res, COOKIE, seed, this.cookie);
      // Later code in this request may render again (e.g. an error) with the same seed.
      // Put first: the first cookie of a name wins, and a short or damaged one may follow.
      req.headers.cookie = `${COOKIE}=${seed}${req.headers.cookie ? `; ${req.headers.cookie}` : ''}`;
    }
    return this.signer.mac(`${seed}|${binding}`);
  }

  /** True when `token` was issued to this browser for `binding`. */
  verify(req: Request, binding: string, token: unknown): boolean {
    const seed = readCookie(req, COOKIE);
    return typeof token === 'string' && !!seed && this.signer.check(`${seed}|${binding}`, token);
  }

  /** The one CSRF check of every form: throws BadRequest (nothing is done) unless `verify` holds. */
  require(req: Request, binding: string, token: unknown): void {
    if (!this.verify(req, binding, token)) throw new BadRequest('The form has expired or did not come from this site. Go back and try again.');
  }
}

/**
 * The CSRF token field of every form. Missing is allowed so the CSRF check,
 * not the schema, explains the refusal.
 */
export const CsrfField = z.string().max(200).default('');
