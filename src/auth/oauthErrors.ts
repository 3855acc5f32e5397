/**
 * OAuth errors: one class per error code of RFC 6749, RFC 6750, RFC 7009,
 * RFC 7591 and RFC 8707, each with a public description (the message, sent as
 * `error_description`), an optional private detail (logged, never sent) and
 * the HTTP status it is answered with when it is the whole answer. The
 * functions at the end are the one place an error becomes a response: JSON
 * (RFC 6749 §5.2) or a redirect back to the client (§4.1.2.1).
 */
import type { Response } from 'express';
import type { Logger } from '../log/logger.js';
import type { OAuthErrorResponse } from './types.js';

export abstract class OAuthError extends Error {
  /** The `error` value. */
  abstract readonly errorCode: string;
  /** Status of a direct (non-redirect) answer: 400 unless the RFC says otherwise (RFC 6749 §5.2). */
  readonly status: number = 400;
  /** What went wrong in terms the client must not see; logged by the response mapping. */
  readonly detail: unknown;

  constructor(description: string, options: { detail?: unknown } = {}) {
    super(description);
    this.name = new.target.name;
    this.detail = options.detail;
  }

  toResponseObject(): OAuthErrorResponse {
    return { error: this.errorCode, error_description: this.message };
  }
}

// RFC 6749 §4.1.2.1 and §5.2.
export class InvalidRequestError extends OAuthError {
  readonly errorCode = 'invalid_request';
}
export class InvalidClientError extends OAuthError {
  readonly errorCode = 'invalid_client';
}
export class InvalidGrantError extends OAuthError {
  readonly errorCode = 'invalid_grant';
}
export class UnauthorizedClientError extends OAuthError {
  readonly errorCode = 'unauthorized_client';
}
export class UnsupportedGrantTypeError extends OAuthError {
  readonly errorCode = 'unsupported_grant_type';
}
export class UnsupportedResponseTypeError extends OAuthError {
  readonly errorCode = 'unsupported_response_type';
}
export class InvalidScopeError extends OAuthError {
  readonly errorCode = 'invalid_scope';
}
export class AccessDeniedError extends OAuthError {
  readonly errorCode = 'access_denied';
}
export class ServerError extends OAuthError {
  readonly errorCode = 'server_error';
  override readonly status = 500;
}
/**
 * RFC 6749 §4.1.2.1 defines it for redirects only ("a 503 ... cannot be
 * returned to the client via an HTTP redirect"). Answered directly by our
 * authorization-server endpoints it is a 400 like the others; the resource
 * server answers an outage with 503 and Retry-After itself (bearerAuth.ts).
 */
export class TemporarilyUnavailableError extends OAuthError {
  readonly errorCode = 'temporarily_unavailable';
}

// RFC 6750 §3.1 (bearer tokens at the resource server).
export class InvalidTokenError extends OAuthError {
  readonly errorCode = 'invalid_token';
  override readonly status = 401;
}
export class InsufficientScopeError extends OAuthError {
  readonly errorCode = 'insufficient_scope';
  override readonly status = 403;
}

// RFC 7009 §2.2.1.
export class UnsupportedTokenTypeError extends OAuthError {
  readonly errorCode = 'unsupported_token_type';
}

// RFC 7591 §3.2.2.
export class InvalidRedirectUriError extends OAuthError {
  readonly errorCode = 'invalid_redirect_uri';
}
export class InvalidClientMetadataError extends OAuthError {
  readonly errorCode = 'invalid_client_metadata';
}
export class InvalidSoftwareStatementError extends OAuthError {
  readonly errorCode = 'invalid_software_statement';
}
export class UnapprovedSoftwareStatementError extends OAuthError {
  readonly errorCode = 'unapproved_software_statement';
}

// RFC 8707 §2.
export class InvalidTargetError extends OAuthError {
  readonly errorCode = 'invalid_target';
}

// Not OAuth codes, but answered in the same shape so clients parse one format.
/** RFC 6585 §4. */
export class TooManyRequestsError extends OAuthError {
  readonly errorCode = 'too_many_requests';
  override readonly status = 429;
}
/** RFC 9110 §15.5.6. */
export class MethodNotAllowedError extends OAuthError {
  readonly errorCode = 'method_not_allowed';
  override readonly status = 405;
}

/** An error code the authorization server (Hydra) answered with, passed on unchanged (RFC 7591 §3.2.2 lets codes be extended). */
export class UpstreamOAuthError extends OAuthError {
  constructor(
    readonly errorCode: string,
    description: string,
  ) {
    super(description);
  }
}

/** Any thrown value as an OAuthError: an unexpected one is a server_error whose detail is the original. */
export function toOAuthError(error: unknown): OAuthError {
  return error instanceof OAuthError ? error : new ServerError('Internal Server Error', { detail: error });
}

/** Answer with `error` as JSON at its status (RFC 6749 §5.2); server errors are logged with their detail. */
export function sendOAuthError(res: Response, error: unknown, log?: Logger): void {
  const e = toOAuthError(error);
  logServerError(e, log);
  res.status(e.status).json(e.toResponseObject());
}

/**
 * The client's redirect URI carrying the error (RFC 6749 §4.1.2.1): `error`,
 * `error_description`, and `state` exactly as the client sent it, if it did.
 */
export function errorRedirectUrl(redirectUri: string, error: unknown, state: string | undefined, log?: Logger): string {
  const e = toOAuthError(error);
  logServerError(e, log);
  const url = new URL(redirectUri);
  url.searchParams.set('error', e.errorCode);
  url.searchParams.set('error_description', e.message);
  if (state) url.searchParams.set('state', state);
  return url.href;
}

function logServerError(e: OAuthError, log: Logger | undefined): void {
  if (e instanceof ServerError) log?.error('authorization server error', { error: e.detail ?? e.message });
}
