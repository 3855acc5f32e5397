import cors from 'cors';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { EndpointLimiter } from './authServerRouter.js';
import type { HydraProvider } from './hydraProvider.js';
import type { ResourceSet } from './resource.js';

export interface TokenProxyOptions {
  provider: HydraProvider;
  /** This server's resource URLs: the only `resource` a token request may name (RFC 8707 §2.2). */
  resources: ResourceSet;
  /** Per-address limits on /token and /revoke, and where they are counted. */
  limiter?: EndpointLimiter;
}

// RFC 6749 §3.2: a parameter sent twice arrives as an array and fails `z.string()`.
const field = z.string().min(1).max(4096);
// RFC 7523 §2.2 client assertions (private_key_jwt) ride along for Hydra to verify.
const ClientCredentials = {
  client_id: field.optional(),
  client_secret: field.optional(),
  client_assertion: field.optional(),
  client_assertion_type: field.optional(),
};

const TokenRequest = z.discriminatedUnion('grant_type', [
  z.object({
    grant_type: z.literal('authorization_code'),
    code: field,
    redirect_uri: field.optional(),
    code_verifier: field.optional(),
    resource: field.optional(),
    ...ClientCredentials,
  }),
  z.object({
    grant_type: z.literal('refresh_token'),
    refresh_token: field,
    scope: field.optional(),
    resource: field.optional(),
    ...ClientCredentials,
  }),
  // RFC 6749 §4.4, for machine clients (MCP extension io.modelcontextprotocol/oauth-client-credentials).
  // Hydra authenticates the client and checks `audience` against its allow-list; whether the
  // token then opens anything is the verifier's call (src/auth/machineClients.ts).
  z.object({
    grant_type: z.literal('client_credentials'),
    scope: field.optional(),
    audience: field.optional(),
    resource: field.optional(),
    ...ClientCredentials,
  }),
]);

const RevokeRequest = z.object({
  token: field,
  token_type_hint: z.enum(['access_token', 'refresh_token']).optional(),
  ...ClientCredentials,
});

const oauthError = (res: Response, status: number, error: string, description: string) =>
  res.status(status).json({ error, error_description: description });

/**
 * POST /token and /revoke, forwarded to Hydra with the client's credentials as
 * presented (Basic header, form secret or RFC 7523 client_assertion): the
 * only token and revocation path, since Hydra never gives out client secrets
 * and so it alone can authenticate confidential clients.
 */
export function tokenProxyRouter({ provider, resources, limiter }: TokenProxyOptions): express.Router {
  const router = express.Router();
  // Browser clients (MCP Inspector) call these cross-origin; no cookies are involved.
  router.use(['/token', '/revoke'], cors({ origin: '*', methods: ['POST', 'OPTIONS'] }));
  // After CORS, so a browser client can read the 429; before parsing, so a flood costs little.
  if (limiter) {
    router.use('/token', limiter('token'));
    router.use('/revoke', limiter('revoke'));
  }
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  router.post('/token', form, async (req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    const grant = typeof req.body?.grant_type === 'string' ? req.body.grant_type : undefined;
    if (grant && grant !== 'authorization_code' && grant !== 'refresh_token' && grant !== 'client_credentials') {
      return oauthError(res, 400, 'unsupported_grant_type', `grant_type ${grant} is not supported`);
    }
    const parsed = TokenRequest.safeParse(req.body ?? {});
    if (!parsed.success) return oauthError(res, 400, 'invalid_request', describe(parsed.error));
    const { resource, ...params } = parsed.data;
    const target = resource === undefined ? undefined : resources.match(resource);
    if (resource !== undefined && !target) {
      return oauthError(res, 400, 'invalid_target', `This server only issues tokens for ${resources.canonical.join(', ')}`);
    }
    // Hydra ignores RFC 8707 `resource`; a person's token gets its audience at consent, a
    // machine's from Hydra's `audience` parameter. The extension's example token request names
    // only `resource`, so it becomes the audience here (our canonical URL, nothing else).
    if (params.grant_type === 'client_credentials' && target && params.audience === undefined) params.audience = target;
    const answer = await provider.forward('token', toForm(params), req.get('authorization'));
    res.status(answer.status).json(answer.body);
  });

  router.post('/revoke', form, async (req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    const parsed = RevokeRequest.safeParse(req.body ?? {});
    if (!parsed.success) return oauthError(res, 400, 'invalid_request', describe(parsed.error));
    const answer = await provider.forward('revoke', toForm(parsed.data), req.get('authorization'));
    // RFC 7009 §2.2: success is an empty 200.
    if (answer.status < 400) return res.status(200).end();
    res.status(answer.status).json(answer.body);
  });

  for (const path of ['/token', '/revoke']) {
    router.all(path, (req, res) => {
      res.set('Allow', 'POST, OPTIONS');
      oauthError(res, 405, 'invalid_request', `${req.method} is not allowed on ${path}`);
    });
  }
  return router;
}

function toForm(params: Record<string, string | undefined>): URLSearchParams {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) form.set(k, v);
  return form;
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
}
