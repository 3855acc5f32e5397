import express, { type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { Logger } from '../../log/logger.js';
import {
  InvalidClientError,
  InvalidRequestError,
  errorRedirectUrl,
  sendOAuthError,
} from '../oauthErrors.js';
import { matchesRegisteredRedirectUri } from '../redirectUris.js';
import { type AuthorizationRequest, OIDC_AUTHORIZATION_PARAMS, type OAuthClientInformationFull, type RegisteredClients } from '../types.js';
import { allowedMethods } from './allowedMethods.js';

export interface AuthorizationHandlerOptions {
  /** Looks up the client that `client_id` names. */
  clients: Pick<RegisteredClients, 'getClient'>;
  /**
   * Continues a request that passed every check here, by redirecting the
   * browser (HydraProvider.authorize: on to Hydra). An OAuthError it throws
   * is redirected back to the client.
   */
  authorize(client: OAuthClientInformationFull, request: AuthorizationRequest, res: Response): Promise<void>;
  /** Per-address limiter, run first (endpointRateLimit('authorize', …): counted where every replica sees it). */
  rateLimit?: RequestHandler;
  /** Where server errors are logged. */
  log?: Logger;
}

// Step 1: what must hold before anything may be sent to the redirect URI.
// RFC 6749 §4.1.2.1: with a missing or invalid client_id or redirect_uri the
// server "MUST NOT automatically redirect the user-agent to the invalid
// redirection URI" and informs the resource owner instead (here: a 400).
const ClientParams = z.object({
  client_id: z.string(),
  redirect_uri: z
    .string()
    .optional()
    .refine((uri) => uri === undefined || URL.canParse(uri), { message: 'redirect_uri must be a valid URL' }),
});

// Step 2: the rest of the request; failures go back to the client's redirect URI.
const RequestParams = z.object({
  // RFC 6749 §4.1.1: response_type "MUST be set to code" (the only flow offered).
  response_type: z.literal('code'),
  // RFC 7636 §4.3, OAuth 2.1 §4.1.1: PKCE is required, with S256 only (MCP authorization §2.4).
  code_challenge: z.string(),
  code_challenge_method: z.literal('S256'),
  scope: z.string().optional(),
  state: z.string().optional(),
  // RFC 8707 §2: an absolute URI; whether it is ours is the provider's check (invalid_target).
  resource: z.string().url().optional(),
  // OIDC Core §3.1.2.1: bounded here, checked by Hydra (an id_token_hint is a JWT, hence the room).
  ...Object.fromEntries(OIDC_AUTHORIZATION_PARAMS.map((p) => [p, z.string().max(p === 'id_token_hint' ? 8192 : 512).optional()])),
});

/**
 * GET or POST /authorize (RFC 6749 §4.1.1; OAuth 2.1 §3.1 allows both).
 * The client and its redirect URI are checked first and answered with a 400
 * when wrong; then the request itself, whose errors are redirected to the
 * client with its `state`. A request that passes goes to `authorize`.
 */
export function authorizationHandler(options: AuthorizationHandlerOptions): express.Router {
  const { clients, log } = options;
  const router = express.Router();
  if (options.rateLimit) router.use(options.rateLimit);
  router.use(allowedMethods(['GET', 'POST']));
  router.use(express.urlencoded({ extended: false }));

  router.all('/', async (req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    const params: unknown = req.method === 'POST' ? req.body : req.query;

    let client: OAuthClientInformationFull;
    let redirectUri: string;
    try {
      ({ client, redirectUri } = await findClientAndRedirect(clients, params));
    } catch (error) {
      return sendOAuthError(res, error, log);
    }

    let state: string | undefined;
    try {
      const parsed = RequestParams.safeParse(params);
      if (!parsed.success) throw new InvalidRequestError(parsed.error.message);
      const { scope, code_challenge, resource } = parsed.data;
      state = parsed.data.state;
      await options.authorize(
        client,
        {
          state,
          scopes: scope === undefined ? [] : scope.split(' '),
          redirectUri,
          codeChallenge: code_challenge,
          ...(resource ? { resource: new URL(resource) } : {}),
          ...oidcParams(parsed.data),
        },
        res,
      );
    } catch (error) {
      res.redirect(302, errorRedirectUrl(redirectUri, error, state, log));
    }
  });
  return router;
}

/**
 * The client and the redirect URI to use (RFC 6749 §3.1.2.3): the one asked
 * for when it is registered (a loopback one on any port, RFC 8252 §7.3), or
 * the only one registered when none is asked for.
 */
async function findClientAndRedirect(
  clients: Pick<RegisteredClients, 'getClient'>,
  params: unknown,
): Promise<{ client: OAuthClientInformationFull; redirectUri: string }> {
  const parsed = ClientParams.safeParse(params);
  if (!parsed.success) throw new InvalidRequestError(parsed.error.message);
  const { client_id, redirect_uri } = parsed.data;
  const client = await clients.getClient(client_id);
  if (!client) throw new InvalidClientError('Invalid client_id');
  if (redirect_uri !== undefined) {
    if (!client.redirect_uris.some((registered) => matchesRegisteredRedirectUri(redirect_uri, registered))) {
      throw new InvalidRequestError('Unregistered redirect_uri');
    }
    return { client, redirectUri: redirect_uri };
  }
  // OAuth 2.1 §2.3.2 would require it always; RFC 6749 §3.1.2.3 lets one registered URI stand in.
  if (client.redirect_uris.length === 1) return { client, redirectUri: client.redirect_uris[0]! };
  throw new InvalidRequestError('redirect_uri must be specified when client has multiple registered URIs');
}

/** The OIDC parameters the client sent, when it sent any. */
function oidcParams(data: Record<string, unknown>): Pick<AuthorizationRequest, 'oidc'> {
  const oidc = Object.fromEntries(OIDC_AUTHORIZATION_PARAMS.flatMap((p) => (typeof data[p] === 'string' ? [[p, data[p]]] : [])));
  return Object.keys(oidc).length ? { oidc } : {};
}
