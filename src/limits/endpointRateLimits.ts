import type { RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
import type { LimitedEndpoint } from '../auth/authServerRouter.js';
import { TooManyRequestsError } from '../auth/oauthErrors.js';

export type { LimitedEndpoint };

export interface EndpointLimit {
  /** Requests allowed per address within `windowMs`. */
  limit: number;
  windowMs: number;
}

/**
 * Per-address limits (documented in docs/security.md). /token and /revoke
 * allow twice the SDK's 50 per 15 minutes, since every refresh and every
 * code exchange of every client behind one address (an office NAT, one
 * person's several editors) lands here; /register keeps the SDK's 20 per
 * hour: registration is rare and each one creates a client in Hydra.
 * /authorize allows 100 per 15 minutes, counted where the others are (in
 * the shared database on several replicas).
 */
export const ENDPOINT_LIMITS: Readonly<Record<LimitedEndpoint, EndpointLimit>> = {
  token: { limit: 100, windowMs: 15 * 60_000 },
  revoke: { limit: 100, windowMs: 15 * 60_000 },
  register: { limit: 20, windowMs: 60 * 60_000 },
  // Each /authorize may fetch a client metadata document and create a Hydra client.
  authorize: { limit: 100, windowMs: 15 * 60_000 },
};

export interface EndpointRateLimitOptions {
  /**
   * A fresh express-rate-limit store for the named limiter (one per limiter;
   * the library refuses to share one). Default: in memory, per process; a
   * store in the shared database makes the limit hold across replicas.
   */
  store?: (endpoint: LimitedEndpoint) => Store;
  /** Overrides of ENDPOINT_LIMITS (tests use small ones). */
  limits?: Partial<Record<LimitedEndpoint, EndpointLimit>>;
}

/**
 * The limiter for one endpoint: past the limit, 429 with `Retry-After`
 * (RFC 6585 §4) and the OAuth-style body of every limiter here
 * (`{"error":"too_many_requests",…}`, as the MCP SDK's limiters send it).
 * RateLimit-* headers follow the IETF draft 6.
 */
export function endpointRateLimit(endpoint: LimitedEndpoint, options: EndpointRateLimitOptions = {}): RequestHandler {
  const { limit, windowMs } = options.limits?.[endpoint] ?? ENDPOINT_LIMITS[endpoint];
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-6',
    legacyHeaders: false,
    ...(options.store ? { store: options.store(endpoint) } : {}),
    handler: (_req, res) => {
      res.set('Cache-Control', 'no-store');
      res.status(429).json(new TooManyRequestsError(`Too many ${endpoint} requests from this address; retry after the time in Retry-After`).toResponseObject());
    },
  });
}
