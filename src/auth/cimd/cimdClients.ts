import type { Logger } from '../../log/logger.js';
import { type HydraAdmin, type HydraClient, HydraError } from '../../hydra/index.js';
import { LruCache } from '../lruCache.js';
import { InvalidClientError, ServerError } from '../oauthErrors.js';
import type { ResourceSet } from '../resource.js';
import { REGISTRABLE_SCOPES } from '../scopes.js';
import type { OAuthClientInformationFull } from '../types.js';
import type { ClientMetadata, ClientMetadataDocuments } from './clientMetadataDocument.js';

export interface CimdClientsOptions {
  documents: ClientMetadataDocuments;
  hydraAdmin: HydraAdmin;
  /** Our resource URLs, put on the client's audience allow-list (as for registered clients). */
  resources: ResourceSet;
  log: Logger;
}

/** Hydra `metadata` marking a client mirrored from a metadata document; DCR cannot set `metadata`. */
export const CIMD_MARK = { cimd: true } as const;

/**
 * Clients identified by a metadata document, mirrored into Hydra so Hydra
 * runs their flows and checks their `private_key_jwt` assertions.
 *
 * The Hydra client id is the URL itself: fosite finds the client by the
 * assertion's `sub` and requires `iss` = `sub` = client id (RFC 7523 §3), and
 * a client signs with its own client_id, so no other id would let Hydra
 * authenticate it. Hydra v2.3 accepts such an id when a client is created and in
 * every OAuth flow, but its admin routes by client id cannot address an id
 * containing "/" (the router decodes %2F and splits on it), so the client is
 * read back by its `owner` (set to the URL) and can never be updated. Hence:
 * the first document seen is mirrored; a later document may drop redirect
 * URIs (our /authorize enforces the current document), but a change Hydra
 * would have to know (a new redirect URI, another auth method or keys) is
 * refused with an error saying so.
 */
export class CimdClients {
  /** URL → fingerprint of the Hydra-relevant fields already checked against Hydra. */
  private readonly checked = new LruCache<string>(1000);

  constructor(private readonly options: CimdClientsOptions) {}

  async getClient(url: string): Promise<OAuthClientInformationFull> {
    let doc: ClientMetadata;
    try {
      doc = await this.options.documents.resolve(url);
    } catch (e) {
      if (e instanceof InvalidClientError) this.options.log.info('client metadata document refused', { reason: e.message });
      throw e;
    }
    const wanted = this.hydraBody(doc);
    const fingerprint = JSON.stringify([wanted.redirect_uris, wanted.token_endpoint_auth_method, wanted.jwks_uri, wanted.jwks, wanted.token_endpoint_auth_signing_alg]);
    if (this.checked.get(url) !== fingerprint) {
      await this.mirror(url, doc, wanted);
      this.checked.set(url, fingerprint, 3600_000);
    }
    return toClientInformation(doc, wanted.scope as string);
  }

  private hydraBody(doc: ClientMetadata): Record<string, unknown> {
    const body: Record<string, unknown> = {
      client_id: doc.client_id,
      // The lookup key: Hydra can list by owner, not fetch by a URL id.
      owner: doc.client_id,
      client_name: doc.client_name,
      client_uri: doc.client_uri,
      logo_uri: doc.logo_uri,
      tos_uri: doc.tos_uri,
      policy_uri: doc.policy_uri,
      contacts: doc.contacts,
      redirect_uris: doc.redirect_uris,
      grant_types: doc.grant_types ?? ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: doc.token_endpoint_auth_method,
      token_endpoint_auth_signing_alg: doc.token_endpoint_auth_signing_alg,
      jwks_uri: doc.jwks_uri,
      jwks: doc.jwks,
      // As for registered clients (hydraClients.ts): every scope may be asked
      // for, the person decides at consent; our resources are the audience.
      scope: REGISTRABLE_SCOPES.join(' '),
      audience: [...this.options.resources.canonical],
      metadata: CIMD_MARK,
    };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    return body;
  }

  private async mirror(url: string, doc: ClientMetadata, body: Record<string, unknown>): Promise<void> {
    try {
      await this.options.hydraAdmin.createClient(body);
      this.options.log.info('metadata document client mirrored into Hydra', { client_id: url, client_name: doc.client_name });
      return;
    } catch (e) {
      if (!(e instanceof HydraError) || e.status !== 409) throw this.hydraFailure(url, e);
    }
    let existing: HydraClient | undefined;
    try {
      existing = (await this.options.hydraAdmin.findClientsByOwner(url)).find((c) => c.client_id === url);
    } catch (e) {
      throw this.hydraFailure(url, e);
    }
    if (!existing || existing.metadata?.cimd !== true) {
      throw new InvalidClientError(`client_id ${url} belongs to a client that was not registered from its metadata document`);
    }
    const change = changeHydraCannotTake(existing, doc);
    if (change) {
      this.options.log.warn('metadata document changed; Hydra keeps the first version', { client_id: url, change });
      throw new InvalidClientError(
        `client metadata document at ${url} changed since it was first used (${change}); this authorization server cannot apply that change`,
      );
    }
  }

  private hydraFailure(url: string, e: unknown): Error {
    this.options.log.error('mirroring a metadata document client into Hydra failed', { client_id: url, error: e });
    if (e instanceof HydraError && !e.unavailable) {
      return new InvalidClientError(`client metadata document at ${url} was refused by the authorization server: ${e.description || e.error}`);
    }
    return new ServerError('The authorization server could not register the client');
  }
}

/** What in `doc` differs from Hydra's frozen copy in a way Hydra would enforce, or undefined. */
function changeHydraCannotTake(hydra: HydraClient, doc: ClientMetadata): string | undefined {
  const known = new Set(hydra.redirect_uris ?? []);
  const added = doc.redirect_uris.filter((u) => !known.has(u));
  if (added.length) return `new redirect URIs ${added.join(', ')}`;
  if ((hydra.token_endpoint_auth_method ?? '') !== doc.token_endpoint_auth_method) return 'token_endpoint_auth_method';
  if ((hydra.jwks_uri || undefined) !== doc.jwks_uri) return 'jwks_uri';
  if (keyIds(hydra.jwks?.keys) !== keyIds(doc.jwks?.keys)) return 'jwks';
  if ((hydra.token_endpoint_auth_signing_alg || undefined) !== doc.token_endpoint_auth_signing_alg) return 'token_endpoint_auth_signing_alg';
  return undefined;
}

/** Keys compared by id (or modulus / curve point): Hydra re-serialises the JWKs it stores. */
function keyIds(keys: Record<string, unknown>[] | undefined): string {
  return (keys ?? []).map((k) => String(k.kid ?? k.n ?? k.x)).sort().join(' ');
}

/** The client as our /authorize sees it: redirect URIs from the current document only. */
function toClientInformation(doc: ClientMetadata, scope: string): OAuthClientInformationFull {
  const { jwks: _jwks, token_endpoint_auth_signing_alg: _alg, ...rest } = doc;
  return { ...rest, scope } as OAuthClientInformationFull;
}
