import type { JSONWebKeySet } from 'jose';
import { getDomain } from 'tldts';
import { z } from 'zod';
import { LruCache } from '../../lib/lruCache.js';
import { InvalidClientError, TemporarilyUnavailableError } from '../oauthErrors.js';
import { checkRedirectUri } from '../redirectUris.js';
import { FetchRefused, fetchJsonDocument } from './fetchDocument.js';
import { type Resolver, systemResolver } from './publicAddress.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
 * MCP 2025-11-25 SEP-991): a client whose `client_id` is an https URL is
 * described by the JSON document at that URL.
 */

/** The client, as its document describes it, after validation. */
export interface ClientMetadata {
  client_id: string;
  redirect_uris: string[];
  token_endpoint_auth_method: 'none' | 'private_key_jwt';
  token_endpoint_auth_signing_alg?: string;
  jwks_uri?: string;
  jwks?: { keys: Record<string, unknown>[] };
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  tos_uri?: string;
  policy_uri?: string;
  contacts?: string[];
  software_id?: string;
  software_version?: string;
  grant_types?: string[];
  response_types?: string[];
  scope?: string;
}

export interface ClientMetadataDocumentsOptions {
  /** Host name resolution; the system resolver by default (tests inject one). */
  resolver?: Resolver;
  /**
   * PEM of a certificate authority for a test deployment (CIMD_TEST_LOOPBACK_CA):
   * when set, documents may also come from loopback addresses, served under it.
   */
  testLoopbackCa?: string;
  /** Largest document accepted, in bytes (default 5 KiB). */
  maxBytes?: number;
  /** Whole fetch, in milliseconds (default 5 s). */
  timeoutMs?: number;
  /** Cache lifetime bounds and the lifetime when the server gives none, in seconds. */
  minTtlSeconds?: number;
  maxTtlSeconds?: number;
  defaultTtlSeconds?: number;
  /** Most documents kept. */
  cacheSize?: number;
  /** How long past its lifetime a document may still stand in when no fetch can start, in seconds (default 1 day). */
  maxStaleSeconds?: number;
  /**
   * Most fetches under way at once (default 64): each unknown URL at /authorize
   * costs an outgoing request of up to `timeoutMs`, so anyone could otherwise
   * make this server open connections without bound.
   */
  maxConcurrentFetches?: number;
  /** Most fetches under way at once from one site, its registrable domain (default 4). */
  maxConcurrentFetchesPerSite?: number;
  now?: () => number;
}

/** Does this `client_id` name a metadata document (rather than a registered client's id)? */
export function isClientIdUrl(clientId: string): boolean {
  // Any URL-shaped id goes this way, so `http://…` gets a specific refusal;
  // ids Hydra assigns at registration are UUIDs.
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(clientId);
}

/**
 * The draft's rules for a client identifier URL: https, a path, no fragment,
 * no username or password, no dot segments. Returns why `id` is refused.
 */
export function checkClientIdUrl(id: string): string | undefined {
  let u: URL;
  try {
    u = new URL(id);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol !== 'https:') return 'must use https';
  if (u.hash || id.includes('#')) return 'must not contain a fragment';
  if (u.username || u.password) return 'must not contain a username or password';
  const path = id.slice(id.indexOf('//') + 2).replace(/^[^/?]*/, '').split('?')[0] ?? '';
  if (path === '' || path === '/') return 'must have a path';
  if (path.split('/').some((s) => s === '.' || s === '..' || /^%2e(%2e)?$/i.test(s))) return 'must not contain . or .. path segments';
  // Compared with the document's client_id character for character; a URL the
  // parser would rewrite (case, default port, escaping) cannot match itself.
  if (u.href !== id) return `is not in normal form (${u.href})`;
  return undefined;
}

const SIGNING_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
/** The algorithms Hydra accepts for private_key_jwt (client/validator.go), advertised in our metadata. */
export const CLIENT_ASSERTION_ALGS: readonly string[] = SIGNING_ALGS;

const text = z.string().max(1000);
const httpsUrl = z.string().refine((v) => URL.canParse(v) && new URL(v).protocol === 'https:', { message: 'must be an https URL' });

const DocumentSchema = z
  .object({
    client_id: z.string(),
    redirect_uris: z.array(z.string()).min(1, { message: 'must list at least one redirect URI' }).max(20),
    token_endpoint_auth_method: z
      .enum(['none', 'private_key_jwt'], { message: 'must be none or private_key_jwt (a document cannot carry a shared secret)' })
      .default('none'),
    token_endpoint_auth_signing_alg: z.enum(SIGNING_ALGS).optional(),
    jwks_uri: httpsUrl.optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) }).optional(),
    client_name: text.optional(),
    client_uri: httpsUrl.optional(),
    logo_uri: httpsUrl.optional(),
    tos_uri: httpsUrl.optional(),
    policy_uri: httpsUrl.optional(),
    contacts: z.array(text).max(10).optional(),
    software_id: text.optional(),
    software_version: text.optional(),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).optional(),
    response_types: z.array(z.literal('code')).optional(),
    scope: text.optional(),
  })
  .superRefine((doc, ctx) => {
    if (doc.token_endpoint_auth_method === 'private_key_jwt' && !doc.jwks_uri && !doc.jwks) {
      ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'is required (or jwks) for private_key_jwt' });
    }
    if (doc.jwks_uri && doc.jwks) ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'cannot be set together with jwks_uri' });
  });

/**
 * Check a fetched document against its URL. The draft: the document's
 * `client_id` MUST equal the URL it was fetched from (simple string
 * comparison), and it MUST NOT contain a shared secret. Redirect URIs come
 * from the document only, under our registration policy.
 */
export function validateDocument(url: string, json: unknown): ClientMetadata | string {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return 'it is not a JSON object';
  const raw = json as Record<string, unknown>;
  if ('client_secret' in raw || 'client_secret_expires_at' in raw) return 'it contains a client_secret; a metadata document must not carry a shared secret';
  if (raw.client_id !== url) return `its client_id ${JSON.stringify(raw.client_id)} is not the URL it was fetched from`;
  const parsed = DocumentSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `${issue.path.join('.') || 'document'} ${issue.message}`;
  }
  for (const uri of parsed.data.redirect_uris) {
    const problem = checkRedirectUri(uri);
    if (problem) return `redirect_uri ${JSON.stringify(uri)} ${problem}`;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed.data)) if (v !== undefined) out[k] = v;
  return out as unknown as ClientMetadata;
}

/**
 * Seconds to keep a document: its Cache-Control max-age, clamped to
 * [min, max]; `no-store`/`no-cache` keep it the minimum (a document fetched
 * on every /authorize would let anyone make us fetch at will); absent → default.
 */
export function cacheSeconds(cacheControl: string | undefined, bounds: { min: number; max: number; fallback: number }): number {
  const directives = (cacheControl ?? '').toLowerCase().split(',').map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return bounds.min;
  const maxAge = directives.map((d) => /^max-age=(\d+)$/.exec(d)?.[1]).find((v) => v !== undefined);
  const seconds = maxAge === undefined ? bounds.fallback : Number(maxAge);
  return Math.min(bounds.max, Math.max(bounds.min, seconds));
}

/**
 * Resolves client_id URLs to validated client metadata, through a bounded
 * cache. Policy when a document changes: the cached copy is used until it
 * expires, so a change applies only after that (at most `maxTtlSeconds`);
 * failures are not cached. Concurrent lookups of one URL share one fetch.
 *
 * Fetches are bounded per site (registrable domain) and in all, so slow
 * documents on a few sites cannot stop sign-ins with every other client;
 * when no fetch may start, a document that expired less than
 * `maxStaleSeconds` ago is used as it was.
 */
export class ClientMetadataDocuments {
  private readonly cache: LruCache<{ doc: ClientMetadata; freshUntil: number }>;
  private readonly keys: LruCache<{ keys: JSONWebKeySet; fetchedAt: number }>;
  private readonly inFlight = new Map<string, Promise<ClientMetadata>>();
  private readonly keysInFlight = new Map<string, Promise<JSONWebKeySet>>();
  /** Fetches under way, in all and per site. */
  private fetching = 0;
  private readonly fetchingPerSite = new Map<string, number>();
  private readonly opts: Required<Omit<ClientMetadataDocumentsOptions, 'testLoopbackCa'>> & { testLoopbackCa?: string };

  constructor(options: ClientMetadataDocumentsOptions = {}) {
    this.opts = {
      resolver: systemResolver,
      maxBytes: 5 * 1024,
      timeoutMs: 5000,
      minTtlSeconds: 300,
      maxTtlSeconds: 24 * 3600,
      defaultTtlSeconds: 3600,
      maxStaleSeconds: 24 * 3600,
      cacheSize: 1000,
      maxConcurrentFetches: 64,
      maxConcurrentFetchesPerSite: 4,
      now: Date.now,
      ...options,
    };
    if (this.opts.minTtlSeconds > this.opts.maxTtlSeconds) throw new TypeError('ClientMetadataDocuments: minTtlSeconds must not exceed maxTtlSeconds');
    this.cache = new LruCache(this.opts.cacheSize, this.opts.now);
    this.keys = new LruCache(this.opts.cacheSize, this.opts.now);
  }

  /** The client described at `url`; throws InvalidClientError saying why not. */
  async resolve(url: string): Promise<ClientMetadata> {
    const hit = this.cache.get(url);
    if (hit && hit.freshUntil > this.opts.now()) return hit.doc;
    const pending = this.inFlight.get(url);
    if (pending) return pending;
    let lookup: Promise<ClientMetadata>;
    try {
      lookup = this.withFetchSlot(url, () => this.load(url));
    } catch (e) {
      // No fetch may start (slow sites hold every slot): a recently expired copy stands in.
      if (e instanceof TemporarilyUnavailableError && hit) return hit.doc;
      throw e;
    }
    lookup = lookup.finally(() => this.inFlight.delete(url));
    this.inFlight.set(url, lookup);
    return lookup;
  }

  /**
   * The key set at a document's `jwks_uri` (for private_key_jwt), fetched as
   * safely as documents are and kept for its Cache-Control max-age (1 to 60
   * minutes); `refresh` reads it again (a key rotated in), at most once a
   * minute per URL.
   */
  async keysAt(url: string, opts: { refresh: boolean }): Promise<JSONWebKeySet> {
    const cached = this.keys.get(url);
    if (cached && (!opts.refresh || this.opts.now() - cached.fetchedAt < MIN_KEYS_REFETCH_MS)) return cached.keys;
    const pending = this.keysInFlight.get(url);
    if (pending) return pending;
    const load = this.withFetchSlot(url, () => this.loadKeys(url)).finally(() => this.keysInFlight.delete(url));
    this.keysInFlight.set(url, load);
    return load;
  }

  /** Run `fetch` in a fetch slot of `url`'s site; throws TemporarilyUnavailableError (synchronously) when none is free. */
  private withFetchSlot<T>(url: string, fetch: () => Promise<T>): Promise<T> {
    const site = siteOf(url);
    const busy = this.fetchingPerSite.get(site) ?? 0;
    if (this.fetching >= this.opts.maxConcurrentFetches || busy >= this.opts.maxConcurrentFetchesPerSite) {
      throw new TemporarilyUnavailableError(`Too many client metadata documents are being fetched${busy >= this.opts.maxConcurrentFetchesPerSite ? ` from ${site}` : ''}; try again shortly`);
    }
    this.fetching++;
    this.fetchingPerSite.set(site, busy + 1);
    return fetch().finally(() => {
      this.fetching--;
      const left = (this.fetchingPerSite.get(site) ?? 1) - 1;
      if (left > 0) this.fetchingPerSite.set(site, left);
      else this.fetchingPerSite.delete(site);
    });
  }

  private fetchOptions() {
    return {
      resolver: this.opts.resolver,
      allowLoopback: this.opts.testLoopbackCa !== undefined,
      extraCa: this.opts.testLoopbackCa,
      maxBytes: this.opts.maxBytes,
      timeoutMs: this.opts.timeoutMs,
    };
  }

  private async load(url: string): Promise<ClientMetadata> {
    const urlProblem = checkClientIdUrl(url);
    // Credentials in a refused URL are not repeated back (errors get logged).
    const shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
    if (urlProblem) throw new InvalidClientError(`client_id ${shown} is not a client metadata document URL: it ${urlProblem}`);
    let fetched;
    try {
      fetched = await fetchJsonDocument(new URL(url), this.fetchOptions());
    } catch (e) {
      if (e instanceof FetchRefused) throw new InvalidClientError(`client metadata document at ${url} could not be fetched: ${e.message}`);
      throw e;
    }
    const metadata = validateDocument(url, fetched.json);
    if (typeof metadata === 'string') throw new InvalidClientError(`client metadata document at ${url} is invalid: ${metadata}`);
    const ttl = cacheSeconds(fetched.cacheControl, { min: this.opts.minTtlSeconds, max: this.opts.maxTtlSeconds, fallback: this.opts.defaultTtlSeconds });
    this.cache.set(url, { doc: metadata, freshUntil: this.opts.now() + ttl * 1000 }, (ttl + this.opts.maxStaleSeconds) * 1000);
    return metadata;
  }

  private async loadKeys(url: string): Promise<JSONWebKeySet> {
    let fetched;
    try {
      fetched = await fetchJsonDocument(new URL(url), { ...this.fetchOptions(), maxBytes: MAX_KEYS_BYTES });
    } catch (e) {
      if (e instanceof FetchRefused) throw new InvalidClientError(`the client's jwks_uri ${url} could not be fetched: ${e.message}`);
      throw e;
    }
    const parsed = KeySetSchema.safeParse(fetched.json);
    if (!parsed.success) throw new InvalidClientError(`the client's jwks_uri ${url} does not hold a JSON Web Key Set`);
    const keys = parsed.data as JSONWebKeySet;
    const ttl = cacheSeconds(fetched.cacheControl, { min: 60, max: 3600, fallback: 300 });
    this.keys.set(url, { keys, fetchedAt: this.opts.now() }, ttl * 1000);
    return keys;
  }
}

/** A key set is fetched again on an unknown kid no sooner than this after the last fetch. */
const MIN_KEYS_REFETCH_MS = 60_000;
/** Largest key set accepted (ten RSA-4096 keys fit). */
const MAX_KEYS_BYTES = 64 * 1024;
const KeySetSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) });

/** The registrable domain of a URL's host (tldts, the public suffix list), or the host itself for an IP address. */
function siteOf(url: string): string {
  const host = new URL(url).hostname;
  return getDomain(host) ?? host;
}
