import cors from 'cors';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { Logger } from '../../log/logger.js';
import { InvalidClientMetadataError, sendOAuthError } from '../oauthErrors.js';
import type { RegisteredClients } from '../types.js';
import { allowedMethods } from './allowedMethods.js';

export interface RegistrationHandlerOptions {
  /** Registers the validated metadata (HydraClientsStore: at Hydra, with our policy). */
  clients: Pick<RegisteredClients, 'registerClient'>;
  /** Per-address limiter, run before the body is read (endpointRateLimit('register', …)). */
  rateLimit?: RequestHandler;
  /** Where server errors are logged. */
  log?: Logger;
  /** Told of each client registered (the audit trail). */
  onRegistered?: (client: { client_id: string; client_name?: string }) => void;
}

/** Registration bodies are small; a big one is an attack or a mistake. */
const MAX_BODY = '16kb';

/**
 * A URL-valued metadata field: absolute and parseable, and never a scheme a
 * browser would run (RFC 7591 §5: the server must check URIs it will show or
 * send people to). The redirect URI policy proper is HydraClientsStore's.
 */
const SafeUrl = z
  .url()
  .superRefine((value, ctx) => {
    if (!URL.canParse(value)) ctx.addIssue({ code: 'custom', message: 'URL must be parseable', fatal: true });
  })
  .refine((value) => !['javascript:', 'data:', 'vbscript:'].includes(new URL(value).protocol), {
    message: 'URL cannot use javascript:, data:, or vbscript: scheme',
  });
/** logo_uri and tos_uri: some clients send "" for "none", taken as absent. */
const OptionalSafeUrl = SafeUrl.optional().or(z.literal('').transform(() => undefined));

/**
 * RFC 7591 §2 client metadata. Fields outside it (and client_id or secrets a
 * client proposes) are dropped: §2 says the server "MUST ignore any client
 * metadata sent by the client that it does not understand", and §3.2.1 that
 * it assigns the client identifier itself.
 */
const ClientMetadata = z
  .object({
    redirect_uris: z.array(SafeUrl),
    token_endpoint_auth_method: z.string().optional(),
    grant_types: z.array(z.string()).optional(),
    response_types: z.array(z.string()).optional(),
    client_name: z.string().optional(),
    client_uri: SafeUrl.optional(),
    logo_uri: OptionalSafeUrl,
    scope: z.string().optional(),
    contacts: z.array(z.string()).optional(),
    tos_uri: OptionalSafeUrl,
    policy_uri: z.string().optional(),
    // Fetched by Hydra for private_key_jwt: https only (Hydra also refuses private addresses).
    jwks_uri: SafeUrl.refine((value) => new URL(value).protocol === 'https:', { message: 'jwks_uri must be an https URL' }).optional(),
    jwks: z.any().optional(),
    software_id: z.string().optional(),
    software_version: z.string().optional(),
    software_statement: z.string().optional(),
  })
  .strip();

/**
 * POST /register, RFC 7591 dynamic client registration: the steps in order
 * are CORS (browser clients register cross-origin), the per-address limit,
 * the JSON body (at most 16 KB), POST only, validation, then the store.
 * Success is 201 with the client information (§3.2.1); every error is 400
 * with an RFC 7591 §3.2.2 code, or 500 server_error, and nothing is cached.
 */
export function registrationHandler(options: RegistrationHandlerOptions): express.Router {
  const { clients, log } = options;
  const router = express.Router();
  router.use(cors());
  if (options.rateLimit) router.use(options.rateLimit);
  router.use(jsonBody());
  router.use(allowedMethods(['POST']));
  router.post('/', async (req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    try {
      const parsed = ClientMetadata.safeParse(req.body);
      if (!parsed.success) throw new InvalidClientMetadataError(parsed.error.message);
      const client = await clients.registerClient(parsed.data);
      options.onRegistered?.(client);
      res.status(201).json(client);
    } catch (error) {
      sendOAuthError(res, error, log);
    }
  });
  return router;
}

/** The JSON body parser, whose failures are RFC 7591 §3.2.2 metadata errors rather than Express error pages. */
function jsonBody(): RequestHandler {
  const parse = express.json({ limit: MAX_BODY });
  return (req: Request, res: Response, next: NextFunction) =>
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const tooLarge = (err as { type?: string }).type === 'entity.too.large';
      sendOAuthError(res, new InvalidClientMetadataError(tooLarge ? 'Registration request is larger than 16 KB' : 'Registration request is not valid JSON'));
    });
}
