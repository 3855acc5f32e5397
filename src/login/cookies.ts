import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/** Read one cookie from the request (no parser dependency for two cookies). */
export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export interface CookieOptions {
  /** Send only over https (set when the public URL is https). */
  secure: boolean;
  maxAgeSeconds?: number;
}

export function setCookie(res: Response, name: string, value: string, opts: CookieOptions): void {
  res.cookie(name, value, {
    httpOnly: true,
    sameSite: 'lax',
    secure: opts.secure,
    path: '/',
    ...(opts.maxAgeSeconds !== undefined ? { maxAge: opts.maxAgeSeconds * 1000 } : {}),
  });
}

export function clearCookie(res: Response, name: string, opts: CookieOptions): void {
  res.clearCookie(name, { httpOnly: true, sameSite: 'lax', secure: opts.secure, path: '/' });
}

/** HMAC-SHA256 signing with the server's secret, for CSRF tokens and the account session. */
export class Signer {
  private readonly key: Buffer;
  constructor(secret: string) {
    if (secret.length < 32) throw new TypeError('the signing secret must be at least 32 characters');
    this.key = Buffer.from(secret, 'utf8');
  }

  mac(value: string): string {
    return createHmac('sha256', this.key).update(value).digest('base64url');
  }

  /** Constant-time comparison of `mac` with the MAC of `value`. */
  check(value: string, mac: string): boolean {
    const expected = Buffer.from(this.mac(value));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** `value.mac`, for values that carry their own data (e.g. "sub|expiry"). */
  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The value inside a signed string, or undefined if the signature is wrong. */
  unsign(signed: string): string | undefined {
    const dot = signed.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const value = signed.slice(0, dot);
    return this.check(value, signed.slice(dot + 1)) ? value : undefined;
  }
}

export const randomToken = () => randomBytes(24).toString('base64url');
