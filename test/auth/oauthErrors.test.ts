import { describe, expect, it } from 'vitest';
import * as errors from '../../src/auth/oauthErrors.js';
import { createLogger } from '../../src/log/logger.js';

const { OAuthError, errorRedirectUrl, toOAuthError } = errors;

describe('OAuth errors', () => {
  it.each<[new (d: string) => errors.OAuthError, string, number]>([
    [errors.InvalidRequestError, 'invalid_request', 400],
    [errors.InvalidClientError, 'invalid_client', 400],
    [errors.InvalidGrantError, 'invalid_grant', 400],
    [errors.UnauthorizedClientError, 'unauthorized_client', 400],
    [errors.UnsupportedGrantTypeError, 'unsupported_grant_type', 400],
    [errors.UnsupportedResponseTypeError, 'unsupported_response_type', 400],
    [errors.InvalidScopeError, 'invalid_scope', 400],
    [errors.AccessDeniedError, 'access_denied', 400],
    [errors.ServerError, 'server_error', 500],
    [errors.TemporarilyUnavailableError, 'temporarily_unavailable', 400],
    [errors.InvalidTokenError, 'invalid_token', 401],
    [errors.InsufficientScopeError, 'insufficient_scope', 403],
    [errors.UnsupportedTokenTypeError, 'unsupported_token_type', 400],
    [errors.InvalidRedirectUriError, 'invalid_redirect_uri', 400],
    [errors.InvalidClientMetadataError, 'invalid_client_metadata', 400],
    [errors.InvalidSoftwareStatementError, 'invalid_software_statement', 400],
    [errors.UnapprovedSoftwareStatementError, 'unapproved_software_statement', 400],
    [errors.InvalidTargetError, 'invalid_target', 400],
    [errors.TooManyRequestsError, 'too_many_requests', 429],
    [errors.MethodNotAllowedError, 'method_not_allowed', 405],
  ])('%o → %s, HTTP %i', (Class, code, status) => {
    const e = new Class('what the client reads');
    expect(e).toBeInstanceOf(OAuthError);
    expect(e.name).toBe(Class.name);
    expect(e.errorCode).toBe(code);
    expect(e.status).toBe(status);
    expect(e.toResponseObject()).toEqual({ error: code, error_description: 'what the client reads' });
  });

  it('passes an upstream code on unchanged', () => {
    expect(new errors.UpstreamOAuthError('invalid_software_statement', 'x').toResponseObject()).toEqual({ error: 'invalid_software_statement', error_description: 'x' });
  });

  it('makes anything else a server_error that keeps the original as private detail only', () => {
    const original = new Error('password=hunter2');
    const e = toOAuthError(original);
    expect(e.errorCode).toBe('server_error');
    expect(e.detail).toBe(original);
    expect(JSON.stringify(e.toResponseObject())).not.toContain('hunter2');
  });

  it('redirects errors to the client with its state (RFC 6749 §4.1.2.1), keeping the URI’s own query', () => {
    const lines: string[] = [];
    const url = new URL(errorRedirectUrl('https://app.example/cb?app=1', new errors.AccessDeniedError('no'), 'st 1'));
    expect([...url.searchParams]).toEqual([['app', '1'], ['error', 'access_denied'], ['error_description', 'no'], ['state', 'st 1']]);
    expect(new URL(errorRedirectUrl('https://app.example/cb', new errors.AccessDeniedError('no'), '')).searchParams.has('state')).toBe(false);
    errorRedirectUrl('https://app.example/cb', new Error('db down'), undefined, createLogger('error', (l) => lines.push(l)));
    expect(lines.join('\n')).toContain('db down');
  });
});
