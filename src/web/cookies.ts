import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parse as parseCookies } from 'cookie';
import type { Request, Response } from 'express';

// Split the header only; decoding is done below, where a bad value can be dropped.
const keepRaw = (value: string) => value;

/**
 * Read one cookie from the request's Cookie header (RFC 6265 §4.2.1), split by
 * the `cookie` package; of two with one name, the first is read. A value whose
 * percent-encoding is broken is treated as absent: the package's own decoder
 * would hand back the raw text instead, and we never write such a value, so it
 * can only be a damaged or forged cookie (the caller then issues a fresh one).
 */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const cookies = parseCookies(header, { decode: keepRaw });
  // A plain object: "constructor" and the like must not be found on its prototype.
  if (!Object.hasOwn(cookies, name)) return undefined;
  try {
    return decodeURIComponent(cookies[name]!);
  } catch {
    return undefined;
  }
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
