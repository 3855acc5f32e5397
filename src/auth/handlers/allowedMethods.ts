import type { RequestHandler } from 'express';
import { MethodNotAllowedError, sendOAuthError } from '../oauthErrors.js';

/**
 * Refuse any other method with 405 and the `Allow` header RFC 9110 §15.5.6
 * requires (HEAD and OPTIONS only when listed), in the OAuth error shape.
 */
export function allowedMethods(methods: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (methods.includes(req.method)) return next();
    res.set('Allow', methods.join(', '));
    sendOAuthError(res, new MethodNotAllowedError(`The method ${req.method} is not allowed for this endpoint`));
  };
}
