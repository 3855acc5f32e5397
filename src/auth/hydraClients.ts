import type { Logger } from '../log/logger.js';
import { CimdClients } from './cimd/cimdClients.js';
import { isClientIdUrl } from './cimd/clientMetadataDocument.js';
import { type HydraAdmin, type HydraClient, HydraError } from '../hydra/index.js';
import { LruCache } from '../lib/lruCache.js';
import {
  InvalidClientMetadataError,
  InvalidRedirectUriError,
  ServerError,
  TemporarilyUnavailableError,
  UpstreamOAuthError,
} from './oauthErrors.js';
import { checkRedirectUri } from './redirectUris.js';
import type { ResourceSet } from './resource.js';
import { REGISTRABLE_SCOPES } from './scopes.js';
import type { OAuthClientInformationFull, OAuthClientMetadata, RegisteredClients } from './types.js';

export interface HydraClientsOptions {
  /** Hydra's admin API: clients are created, read and updated there (its public registration stays off). */
  hydraAdmin: HydraAdmin;
  /** Our resource URLs, put on every client's audience allow-list. */
  resources: ResourceSet;
  log: Logger;
  /** How long a looked-up client is reused before asking Hydra again. */
  cacheTtlMs?: number;
  /** Most clients kept in the lookup cache. */
  cacheSize?: number;
  /** Clients whose `client_id` is a URL (Client ID Metadata Documents) and their Hydra mirrors; without it such ids are unknown clients. */
  cimd?: CimdClients;
}

/**
 * Registered clients live in Hydra. Registration creates them through
 * Hydra's admin API with our policy applied (Hydra's own public registration
 * is off: hydra/hydra.yml); lookups go to the admin API by id (never by
 * listing all clients) through a small TTL cache, since every /authorize
 * needs one.
 */
export class HydraClientsStore implements RegisteredClients {
  private readonly cache: LruCache<OAuthClientInformationFull>;
  private readonly cimd: CimdClients | undefined;

  constructor(private readonly options: HydraClientsOptions) {
    this.cache = new LruCache(options.cacheSize ?? 1000);
    this.cimd = options.cimd;
  }

  async getClient(clientId: string): Promise<OAuthClientInformationFull | undefined> {
    // A URL client_id names its metadata document: fetched (cached), checked,
    // mirrored into Hydra for the authorization about to start; errors are
    // invalid_client saying why.
    if (this.cimd && isClientIdUrl(clientId)) return this.cimd.getClient(clientId, { authorizing: true });
    const hit = this.cache.get(clientId);
    if (hit) return hit;
    let found: HydraClient | undefined;
    try {
      found = await this.options.hydraAdmin.getClient(clientId);
    } catch (e) {
      this.options.log.warn('client lookup failed', { client_id: clientId, error: e });
      throw new ServerError('The authorization server could not look up the client');
    }
    if (!found) return undefined;
    const client = toClientInformation(found);
    this.cache.set(clientId, client, this.options.cacheTtlMs ?? 60_000);
    return client;
  }

  /** Note that a metadata document client was given tokens (its mirror is in use). */
  async tokenIssued(url: string): Promise<void> {
    await this.cimd?.tokenIssued(url);
  }

  /** The id Hydra knows `clientId` by: a metadata document's mirror, or the id itself. */
  hydraIdOf(clientId: string): string {
    return this.cimd && isClientIdUrl(clientId) ? this.cimd.hydraIdOf(clientId) : clientId;
  }

  /**
   * RFC 8252 §7.3: a native client registered `http://localhost/cb` may come
   * back on any port. Hydra ignores the port only for IP literals (ory/hydra
   * #4127), so the exact URI the client asked for is added to its
   * registration before the redirect to Hydra (our /authorize has already
   * checked it matches a registered loopback URI). The added ports
   * are bounded: the newest few are kept.
   */
  async allowLoopbackPort(client: OAuthClientInformationFull, redirectUri: string): Promise<void> {
    if (client.redirect_uris.includes(redirectUri) || new URL(redirectUri).hostname !== 'localhost') return;
    const mirrorOf = this.cimd && isClientIdUrl(client.client_id) ? client.client_id : undefined;
    const hydraId = this.hydraIdOf(client.client_id);
    // A mirror's added ports live only in Hydra's copy (the document lists the port-less URI).
    const held = mirrorOf ? ((await this.options.hydraAdmin.getClient(hydraId))?.redirect_uris ?? client.redirect_uris) : client.redirect_uris;
    if (held.includes(redirectUri)) return;
    const withPort = (u: string) => new URL(u).hostname === 'localhost' && new URL(u).port !== '';
    const kept = held.filter((u) => !withPort(u));
    const recent = held.filter(withPort).slice(-(MAX_ADDED_LOOPBACK_PORTS - 1));
    const updated = await this.options.hydraAdmin.setRedirectUris(hydraId, [...kept, ...recent, redirectUri]);
    if (mirrorOf) this.cimd!.forget(mirrorOf);
    else this.cache.set(client.client_id, toClientInformation(updated), this.options.cacheTtlMs ?? 60_000);
    this.options.log.info('loopback redirect port allowed', { client_id: client.client_id, redirect_uri: redirectUri });
  }

  async registerClient(metadata: OAuthClientMetadata): Promise<OAuthClientInformationFull> {
    // MCP client-credentials extension (io.modelcontextprotocol/oauth-client-credentials):
    // that flow "requires pre-registered client credentials ... established out-of-band
    // through administrative channels. Dynamic Client Registration is not used".
    if (metadata.grant_types?.includes('client_credentials')) {
      throw new InvalidClientMetadataError(
        'grant_types must not include client_credentials: machine clients are made by an operator (npm run client -- add --machine), not registered',
      );
    }
    for (const uri of metadata.redirect_uris) {
      const problem = checkRedirectUri(uri);
      if (problem) throw new InvalidRedirectUriError(`redirect_uri ${JSON.stringify(uri)} ${problem}`);
    }
    const body: Record<string, unknown> = {
      // Hydra's admin API takes any field, an id, a secret, `metadata` and
      // `skip_consent` among them, so only RFC 7591 §2 fields named here go
      // through; Hydra assigns the id and the secret.
      ...pick(metadata as Record<string, unknown>, REGISTRABLE_FIELDS),
      grant_types: metadata.grant_types ?? ['authorization_code', 'refresh_token'],
      response_types: metadata.response_types ?? ['code'],
      // Policy: every client may ask for every scope we know; the person at the
      // consent page decides what is granted. A narrower registered scope would
      // make later step-up requests fail at Hydra with invalid_scope.
      scope: REGISTRABLE_SCOPES.join(' '),
      // Hydra re-checks granted audience against this allow-list on refresh
      // ("Requested audience ... has not been whitelisted"), so our resource
      // URLs go here. A client-declared audience is never trusted.
      audience: [...this.options.resources.canonical],
    };
    let answer: HydraClient & { client_secret?: string };
    try {
      answer = await this.options.hydraAdmin.createClient(body);
    } catch (e) {
      if (!(e instanceof HydraError) || e.status === 0) {
        this.options.log.error('registration: Hydra unreachable', { error: e });
        throw new TemporarilyUnavailableError('The authorization server is unavailable, try again');
      }
      this.options.log.info('registration refused by Hydra', { status: e.status, hydra_error: e.error, detail: e.description });
      if (e.unavailable) throw new ServerError('The authorization server failed to register the client');
      // RFC 7591 §3.2.2: Hydra's refusal of the metadata is the same error for the client.
      throw e.error === 'invalid_client_metadata' || e.error === 'invalid_request' || e.status === 400
        ? new InvalidClientMetadataError(e.description || 'Invalid client metadata')
        : new UpstreamOAuthError(e.error, e.description || 'Registration refused');
    }
    // Hydra's admin API makes a secret for every client that is not public;
    // one that signs its assertions (private_key_jwt) has no use for it.
    if (answer.token_endpoint_auth_method === 'private_key_jwt') delete answer.client_secret;
    const created = toClientInformation(answer);
    this.options.log.info('client registered', { client_id: created.client_id, client_name: created.client_name });
    return created;
  }
}

/** The RFC 7591 §2 fields a client may set at /register (Hydra assigns everything else, or we do). */
const REGISTRABLE_FIELDS = [
  'redirect_uris',
  'token_endpoint_auth_method',
  'client_name',
  'client_uri',
  'logo_uri',
  'tos_uri',
  'policy_uri',
  'contacts',
  'jwks_uri',
  'jwks',
  'software_id',
  'software_version',
] as const;

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (source[k] !== undefined) out[k] = source[k];
  return out;
}

const MAX_ADDED_LOOPBACK_PORTS = 10;

/**
 * Hydra's client JSON, made acceptable to MCP clients: Hydra sends
 * `"contacts": null` and `""` for unset URIs, which the SDK's zod schemas
 * (and Claude, Cursor, mcp-remote) reject. Only RFC 7591 §2/§3.2.1 fields are
 * kept, without nulls or empty strings; RFC 7592 management fields are not
 * offered, since clients manage registrations through us, not Hydra.
 */
export function toClientInformation(hydra: HydraClient & { client_secret?: string }): OAuthClientInformationFull {
  const source = hydra as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of RFC7591_FIELDS) {
    const value = source[key];
    if (value === null || value === undefined || value === '') continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue; // Hydra's "jwks": {}
    out[key] = value;
  }
  out.redirect_uris = hydra.redirect_uris ?? [];
  if (hydra.created_at) out.client_id_issued_at = Math.floor(Date.parse(hydra.created_at) / 1000);
  return out as unknown as OAuthClientInformationFull;
}

const RFC7591_FIELDS = [
  'client_id',
  'client_secret',
  'client_secret_expires_at', // Hydra sends 0, "never expires" in RFC 7591 too
  'redirect_uris',
  'token_endpoint_auth_method',
  'grant_types',
  'response_types',
  'client_name',
  'client_uri',
  'logo_uri',
  'scope',
  'contacts',
  'tos_uri',
  'policy_uri',
  'jwks_uri',
  'jwks',
  'software_id',
  'software_version',
] as const;
