import type { RequestHandler } from 'express';

/** One year, the value HSTS preload lists ask for; no includeSubDomains: sibling hosts are not ours to pin. */
export const HSTS_VALUE = 'max-age=31536000';

/**
 * Strict-Transport-Security on every answer when the public URL is https
 * (RFC 6797): once a browser has seen it, it never again sends a cookie or a
 * password to this host over plain http. Written here as one header rather
 * than with helmet: it is the only header of helmet's we would use.
 */
export function strictTransportSecurity(publicBaseUrl: URL): RequestHandler {
  const on = publicBaseUrl.protocol === 'https:';
  return (_req, res, next) => {
    if (on) res.setHeader('Strict-Transport-Security', HSTS_VALUE);
    next();
  };
}
