/**
 * The catalogue of third-party OAuth providers people can connect (issue 14):
 * read once from the JSON file named by CONNECTIONS_FILE, checked with zod,
 * and refused at start-up with a message naming the provider and the field.
 * No environment reads of its own: the caller passes the file's path and the
 * environment client secrets are taken from.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { secretFromEnv } from '../lib/secretFiles.js';

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** One provider, checked, with its client secret resolved. */
export interface ProviderConfig {
  /** Key in the catalogue; used in URLs and storage (`/^[a-z][a-z0-9_-]{0,31}$/`). */
  name: string;
  /** What people see on the account page. */
  displayName: string;
  /** OIDC issuer: endpoints come from its discovery document. Set exactly when the three endpoints below are not. */
  issuer?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  /** RFC 7009; without it, disconnecting only deletes our copy. */
  revocationEndpoint?: string;
  clientId: string;
  /** From `clientSecret` or the variable named by `clientSecretEnv`; absent for 'none'. Never log it. */
  clientSecret?: string;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  scopes: string[];
  /** PKCE S256 (RFC 7636); default true, required with 'none'. */
  pkce: boolean;
  /** Extra authorization-request parameters (e.g. `access_type`, `prompt`). */
  authorizationParams: Record<string, string>;
}

/** A bad catalogue; the message has one line per problem, each naming the provider and field. */
export class ProviderCatalogueError extends TypeError {
  override name = 'ProviderCatalogueError';
}

const PROVIDER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Loopback hosts, where plain http is allowed (development and tests; RFC 8252 §8.3's reasoning). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
/** Parameters the client sets itself; a catalogue that set them would break state, PKCE or the redirect. */
const RESERVED_PARAMS = new Set([
  'client_id',
  'client_secret',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
]);

const nonEmpty = z.string({ error: 'expected a non-empty string' }).regex(/\S/, { error: 'expected a non-empty string' });

/** True when `url` may be reached over plain http: a loopback host. */
export function isLoopbackUrl(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname);
}

/** An absolute https URL, or http on loopback; no fragment. `issuer` also refuses a query (OIDC Discovery §3). */
function endpointUrl(kind: 'issuer' | 'endpoint') {
  return z.string({ error: 'expected a URL string' }).superRefine((value, ctx) => {
    if (!URL.canParse(value)) return void ctx.addIssue({ code: 'custom', message: `expected an absolute URL, got "${value}"` });
    const u = new URL(value);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return void ctx.addIssue({ code: 'custom', message: `must be an https URL, got "${value}"` });
    if (u.protocol === 'http:' && !isLoopbackUrl(u)) {
      ctx.addIssue({ code: 'custom', message: `must use https (plain http is allowed only on 127.0.0.1, [::1] or localhost), got "${value}"` });
    }
    if (u.hash || value.includes('#')) ctx.addIssue({ code: 'custom', message: 'must not have a fragment' });
    if (kind === 'issuer' && (u.search || value.includes('?'))) ctx.addIssue({ code: 'custom', message: 'must not have a query (OpenID Connect Discovery §3)' });
    if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials' });
  });
}

const ProviderSchema = z
  .strictObject({
    displayName: nonEmpty.max(100, { error: 'at most 100 characters' }),
    issuer: endpointUrl('issuer').optional(),
    authorizationEndpoint: endpointUrl('endpoint').optional(),
    tokenEndpoint: endpointUrl('endpoint').optional(),
    revocationEndpoint: endpointUrl('endpoint').optional(),
    clientId: nonEmpty,
    clientSecret: nonEmpty.optional(),
    clientSecretEnv: z
      .string({ error: 'expected the name of an environment variable' })
      .regex(ENV_NAME, { error: 'expected the name of an environment variable (letters, digits, _)' })
      .optional(),
    tokenEndpointAuthMethod: z
      .enum(['client_secret_basic', 'client_secret_post', 'none'], {
        error: 'expected "client_secret_basic", "client_secret_post" or "none"',
      })
      .default('client_secret_basic'),
    scopes: z.array(
      z
        .string({ error: 'expected a scope string' })
        .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: 'expected one scope token (RFC 6749 §3.3: no spaces, quotes or backslashes)' }),
      { error: 'expected an array of scope strings' },
    ),
    pkce: z.boolean({ error: 'expected true or false' }).default(true),
    authorizationParams: z
      .record(z.string(), z.string({ error: 'expected a string value' }), { error: 'expected an object of string values' })
      .superRefine((params, ctx) => {
        for (const key of Object.keys(params)) {
          if (RESERVED_PARAMS.has(key)) ctx.addIssue({ code: 'custom', path: [key], message: 'is set by the client itself and cannot be configured' });
        }
      })
      .default({}),
  })
  .superRefine((p, ctx) => {
    const explicit = ['authorizationEndpoint', 'tokenEndpoint', 'revocationEndpoint'] as const;
    const given = explicit.filter((k) => p[k] !== undefined);
    if (p.issuer !== undefined && given.length) {
      for (const k of given) ctx.addIssue({ code: 'custom', path: [k], message: 'give either issuer (discovery) or explicit endpoints, not both' });
    } else if (p.issuer === undefined) {
      if (!p.authorizationEndpoint) ctx.addIssue({ code: 'custom', path: ['authorizationEndpoint'], message: 'required when there is no issuer (give issuer, or authorizationEndpoint and tokenEndpoint)' });
      if (!p.tokenEndpoint) ctx.addIssue({ code: 'custom', path: ['tokenEndpoint'], message: 'required when there is no issuer (give issuer, or authorizationEndpoint and tokenEndpoint)' });
      // An ID token is checked against the issuer, which explicit endpoints do not have.
      if (p.scopes.includes('openid')) ctx.addIssue({ code: 'custom', path: ['scopes'], message: '"openid" needs an issuer (OpenID Connect discovery), not explicit endpoints' });
    }
    if (p.clientSecret !== undefined && p.clientSecretEnv !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecretEnv'], message: 'give either clientSecret or clientSecretEnv, not both' });
    }
    const hasSecret = p.clientSecret !== undefined || p.clientSecretEnv !== undefined;
    if (p.tokenEndpointAuthMethod === 'none') {
      if (hasSecret) ctx.addIssue({ code: 'custom', path: [p.clientSecret !== undefined ? 'clientSecret' : 'clientSecretEnv'], message: 'must not be set with tokenEndpointAuthMethod "none" (a public client has no secret)' });
      // OAuth 2.1 §7.5.1 / RFC 9700 §2.1.1: a public client must use PKCE.
      if (!p.pkce) ctx.addIssue({ code: 'custom', path: ['pkce'], message: 'must be true with tokenEndpointAuthMethod "none" (a public client needs PKCE)' });
    } else if (!hasSecret) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `required for tokenEndpointAuthMethod "${p.tokenEndpointAuthMethod}" (give clientSecret or clientSecretEnv)` });
    }
  });

const CatalogueSchema = z.strictObject(
  {
    providers: z.record(z.string(), ProviderSchema, { error: 'expected an object of providers by name' }),
  },
  { error: 'expected an object with "providers"' },
);

/** `scopes.0` → `scopes[0]`; `authorizationParams.x` stays dotted. */
function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, seg) => (typeof seg === 'number' ? `${out}[${seg}]` : out ? `${out}.${String(seg)}` : String(seg)), '');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const [top, provider, ...field] = issue.path;
  const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : undefined;
  if (top !== 'providers' || provider === undefined) {
    if (unknownKeys) return `${unknownKeys.map((k) => `"${k}"`).join(', ')}: unknown key (the file has one key, "providers")`;
    return `${fieldName(issue.path) || '(file)'}: ${issue.message}`;
  }
  const where = `provider "${String(provider)}"`;
  if (unknownKeys) {
    const known = Object.keys(ProviderSchema.shape).join(', ');
    return unknownKeys.map((k) => `${where}: ${fieldName([...field, k])}: unknown key (expected one of ${known})`).join('\n');
  }
  return `${where}: ${field.length ? fieldName(field) : '(provider)'}: ${issue.message}`;
}

const fail = (lines: string[]): never => {
  throw new ProviderCatalogueError(lines.map((l) => `CONNECTIONS_FILE: ${l}`).join('\n'));
};

/**
 * Check a parsed catalogue and resolve client secrets from `env`. Throws a
 * ProviderCatalogueError listing every problem, one line each, e.g.
 * `CONNECTIONS_FILE: provider "github": clientId: expected a non-empty string`.
 */
export function parseProviderCatalogue(json: unknown, env: Record<string, string | undefined>): ProviderConfig[] {
  const problems: string[] = [];
  // Names are checked here rather than with a record key schema so the message can quote the name.
  const names = json && typeof json === 'object' && 'providers' in json && json.providers && typeof json.providers === 'object' ? Object.keys(json.providers) : [];
  for (const name of names) {
    if (!PROVIDER_NAME.test(name)) problems.push(`provider "${name}": name must match ${PROVIDER_NAME} (lower-case letter first, then up to 31 of a-z 0-9 _ -)`);
  }
  // Checks across fields (issuer XOR endpoints, secrets, PKCE) run once each field is well-formed.
  const parsed = CatalogueSchema.safeParse(json);
  if (!parsed.success) problems.push(...parsed.error.issues.flatMap((i) => describeIssue(i).split('\n')));
  if (problems.length || !parsed.success) return fail(problems);

  const providers: ProviderConfig[] = [];
  for (const [name, p] of Object.entries(parsed.data.providers)) {
    let clientSecret = p.clientSecret;
    if (p.clientSecretEnv !== undefined) {
      try {
        // NAME or NAME_FILE (Docker/Kubernetes secrets), like the server's own secrets.
        clientSecret = secretFromEnv(env, p.clientSecretEnv);
        if (!clientSecret) problems.push(`provider "${name}": clientSecretEnv: the environment variable ${p.clientSecretEnv} is not set`);
      } catch (err) {
        problems.push(`provider "${name}": clientSecretEnv: ${(err as Error).message}`);
      }
    }
    providers.push({
      name,
      displayName: p.displayName,
      ...(p.issuer !== undefined ? { issuer: p.issuer } : {}),
      ...(p.authorizationEndpoint !== undefined ? { authorizationEndpoint: p.authorizationEndpoint } : {}),
      ...(p.tokenEndpoint !== undefined ? { tokenEndpoint: p.tokenEndpoint } : {}),
      ...(p.revocationEndpoint !== undefined ? { revocationEndpoint: p.revocationEndpoint } : {}),
      clientId: p.clientId,
      ...(clientSecret !== undefined ? { clientSecret } : {}),
      tokenEndpointAuthMethod: p.tokenEndpointAuthMethod,
      scopes: p.scopes,
      pkce: p.pkce,
      authorizationParams: p.authorizationParams,
    });
  }
  if (problems.length) return fail(problems);
  return providers;
}

/** Read the catalogue file at `path` (CONNECTIONS_FILE) and check it; see parseProviderCatalogue. */
export function loadProviderCatalogue(path: string, env: Record<string, string | undefined>): ProviderConfig[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail([`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail([`${path} is not valid JSON: ${(err as Error).message}`]);
  }
  return parseProviderCatalogue(json, env);
}
