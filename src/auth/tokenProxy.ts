import cors from 'cors';
import express, { type Request, type RequestHandler, type Response } from 'express';
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
  /** Told of every answer of POST /token, once, whoever gave it (see countTokenAnswers). */
  onTokenAnswer?: TokenAnswerListener;
}

/**
 * One answer of POST /token: the `grant_type` the form named (undefined when
 * it was not read, as for the limiter's 429, which answers before parsing),
 * and "ok" or the OAuth error code answered ("rate_limited" for the 429).
 * Both are as the client sent or was told: the listener bounds them.
 */
export type TokenAnswerListener = (grantType: string | undefined, outcome: string) => void;

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
 * Count every answer of POST /token once, when it is sent: the handler's, the
 * limiter's 429 and the body parser's alike (a listener in the handler would
 * miss the last two). The error code is the one the JSON body carried.
 */
function countTokenAnswers(onAnswer: TokenAnswerListener): RequestHandler {
  return (req, res, next) => {
    let error: unknown;
    // Read on its way out: whatever sends the JSON, its `error` is the outcome.
    const json = res.json.bind(res);
    res.json = (body?: unknown) => {
      error = (body as { error?: unknown } | null | undefined)?.error;
      return json(body);
    };
    res.once('finish', () => {
      const grant = (req.body as { grant_type?: unknown } | undefined)?.grant_type;
      onAnswer(typeof grant === 'string' ? grant : undefined, outcomeOf(res.statusCode, error));
    });
    next();
  };
}

/**
 * "ok", "rate_limited" for a 429 (whose body says too_many_requests), else the
 * error code sent, else one named by the status: a 4xx without an OAuth body
 * is the body parser refusing the request (too large, malformed).
 */
function outcomeOf(status: number, error: unknown): string {
  if (status < 400) return 'ok';
  if (status === 429) return 'rate_limited';
  if (typeof error === 'string') return error;
  return status === 503 ? 'temporarily_unavailable' : status >= 500 ? 'server_error' : 'invalid_request';
}

/**
 * POST /token and /revoke, forwarded to Hydra with the client's credentials as
 * presented (Basic header, form secret or RFC 7523 client_assertion): the
 * only token and revocation path, since Hydra never gives out client secrets
 * and so it alone can authenticate confidential clients.
 */
export function tokenProxyRouter({ provider, resources, limiter, onTokenAnswer }: TokenProxyOptions): express.Router {
  const router = express.Router();
  // Browser clients (MCP Inspector) call these cross-origin; no cookies are involved.
  router.use(['/token', '/revoke'], cors({ origin: '*', methods: ['POST', 'OPTIONS'] }));
  // Before the limiter, so its 429s count too.
  if (onTokenAnswer) router.post('/token', countTokenAnswers(onTokenAnswer));
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
