import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../log/logger.js';
import { withSpan } from '../tracing/spans.js';
import { InvalidTokenError, TemporarilyUnavailableError } from './oauthErrors.js';
import type { AuthInfo, OAuthTokenVerifier } from './types.js';
import { wwwAuthenticate } from './wwwAuthenticate.js';

export interface BearerAuthOptions {
  verifier: OAuthTokenVerifier;
  /** This endpoint's RFC 9728 metadata URL, named in every challenge. */
  resourceMetadataUrl: string;
  log: Logger;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified token, set by bearerAuth; the SDK transports read it as `authInfo`. */
      auth?: AuthInfo;
    }
  }
}

// Longer than any Hydra token; a huge header is an attack or a mistake.
const MAX_TOKEN_LENGTH = 8192;
const RETRY_AFTER_SECONDS = 5;

/**
 * RFC 6750 bearer authentication for the MCP endpoints. Unlike the SDK's
 * requireBearerAuth it tells an unreachable Hydra (503 + Retry-After, so
 * clients retry) from a bad token (401, so clients re-authorize).
 */
export function bearerAuth({ verifier, resourceMetadataUrl, log }: BearerAuthOptions): RequestHandler {
  const unauthorized = (res: Response, description: string) => {
    res
      .status(401)
      .set('WWW-Authenticate', wwwAuthenticate({ error: 'invalid_token', description, resourceMetadataUrl }))
      .json({ error: 'invalid_token', error_description: description });
  };

  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (!header) return unauthorized(res, 'Missing Authorization header');
    // RFC 6750 §2.1: exactly `Bearer <token68>`.
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
    if (!match) return unauthorized(res, "Authorization header must be 'Bearer <token>'");
    const token = match[1]!;
    if (token.length > MAX_TOKEN_LENGTH) return unauthorized(res, 'Token is too long');
    try {
      // A span of its own: a cold cache shows Hydra's introspection (or the JWKS fetch) under it.
      const auth = await withSpan('verify access token', {}, () => verifier.verifyAccessToken(token));
      if (typeof auth.expiresAt !== 'number' || auth.expiresAt <= Date.now() / 1000) {
        return unauthorized(res, 'Token has expired');
      }
      req.auth = auth;
      next();
    } catch (e) {
      if (e instanceof InvalidTokenError) return unauthorized(res, e.message);
      if (e instanceof TemporarilyUnavailableError) {
        res.status(503).set('Retry-After', String(RETRY_AFTER_SECONDS)).json(e.toResponseObject());
        return;
      }
      log.error('token verification failed', { error: e });
      res.status(500).json({ error: 'server_error', error_description: 'Token verification failed' });
    }
  };
}
