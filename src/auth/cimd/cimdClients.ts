import { createHash, createHmac } from 'node:crypto';
import type { Logger } from '../../log/logger.js';
import { type HydraAdmin, type HydraClient, HydraError } from '../../hydra/index.js';
import { LruCache } from '../../lib/lruCache.js';
import { InvalidClientError, ServerError, TemporarilyUnavailableError } from '../oauthErrors.js';
import type { ResourceSet } from '../resource.js';
import { REGISTRABLE_SCOPES } from '../scopes.js';
import { matchesRegisteredRedirectUri } from '../redirectUris.js';
import type { OAuthClientInformationFull } from '../types.js';
import type { ClientMetadata, ClientMetadataDocuments } from './clientMetadataDocument.js';

/**
 * The mirrors this server keeps in Hydra, as every replica sees them (the
 * `cimd_mirrors` table): when each was last sent to Hydra's authorization
 * endpoint and last given tokens, so unused ones can be deleted.
 */
export interface MirrorRegistry {
  /** Note an authorization with the mirror `hydraId` of `url`; true when it was not listed (it must be created in Hydra). */
  authorizing(hydraId: string, url: string, at: Date): Promise<boolean>;
  /** Note a token issued to the mirror. */
  tokenIssued(hydraId: string, at: Date): Promise<void>;
  /** How many listed mirrors have never been given a token. */
  countNeverUsed(): Promise<number>;
  /** Mirrors not sent to Hydra since `quietSince` and given no token since `idleSince` (or never). */
  expired(quietSince: Date, idleSince: Date, limit: number): Promise<string[]>;
  /** Unlist `hydraId` if it is still expired by the same measure; false when it was used meanwhile. */
  unlistIfExpired(hydraId: string, quietSince: Date, idleSince: Date): Promise<boolean>;
}

export interface CimdClientsOptions {
  documents: ClientMetadataDocuments;
  hydraAdmin: HydraAdmin;
  /** Our resource URLs, put on the client's audience allow-list (as for registered clients). */
  resources: ResourceSet;
  log: Logger;
  /** The server's secret (SESSION_SECRET, the same on every replica): each mirror's Hydra secret is derived from it. */
  secret: string;
  registry: MirrorRegistry;
  /** Most mirrors that were created but never given a token (default 1,000): past it, new documents wait. */
  maxNeverUsed?: number;
  now?: () => number;
}

/** Hydra `metadata` of a mirror: the document URL it follows. DCR cannot set `metadata`. */
export interface MirrorMark {
  cimd: true;
  /** The client_id URL (the document) this Hydra client stands for. */
  url: string;
  /** Which derived secret Hydra holds (a hash of it, not the secret), so a new SESSION_SECRET is noticed. */
  secret_id: string;
}

/** The owner of every mirror in Hydra: operators can list them by this owner (hydra/README.md). */
export const MIRROR_OWNER = 'hydra-mcp:cimd';

/**
 * Clients identified by a metadata document (draft-ietf-oauth-client-id-
 * metadata-document), mirrored into Hydra so Hydra runs their flows.
 *
 * The mirror's Hydra id is derived from the URL (`cimd-<host>-<hash>`), not
 * the URL itself: Hydra v2.3's admin routes cannot address an id containing
 * "/", and an id of our own choosing can be read, updated and deleted. So the
 * mirror follows the document: every time a document is (re)read its redirect
 * URIs, names and links are put into Hydra's copy, and a removed redirect URI
 * stops working at Hydra too.
 *
 * At Hydra the mirror is a confidential client whose secret only this server
 * knows (derived from its secret); the client itself authenticates to us,
 * at /token, as its document says (`none`, or `private_key_jwt` checked
 * against the document's current keys: cimdTokenAuth.ts). Hydra's own token
 * endpoint is useless to anyone else, and a key dropped from the document
 * stops working when the document is next read.
 */
export class CimdClients {
  /** Hydra id → fingerprint of what Hydra was last given (or found to hold). */
  private readonly synced: LruCache<string>;
  private readonly now: () => number;

  constructor(private readonly options: CimdClientsOptions) {
    this.now = options.now ?? Date.now;
    this.synced = new LruCache(1000, this.now);
  }

  /** The Hydra client id of the mirror of `url`. */
  hydraIdOf(url: string): string {
    return mirrorId(url);
  }

  /** The credentials this server presents at Hydra's token endpoint for the mirror of `url`. */
  credentialsOf(url: string): { clientId: string; secret: string } {
    return { clientId: mirrorId(url), secret: this.secretOf(url) };
  }

  /**
   * The client `url` names, from its current document, with its Hydra mirror
   * brought in line. `authorizing`: an authorization is about to start, so the
   * mirror must exist (created if it was never made or was deleted as unused).
   */
  async getClient(url: string, opts: { authorizing?: boolean } = {}): Promise<OAuthClientInformationFull> {
    let doc: ClientMetadata;
    try {
      doc = await this.options.documents.resolve(url);
    } catch (e) {
      if (e instanceof InvalidClientError) this.options.log.info('client metadata document refused', { reason: e.message });
      throw e;
    }
    const id = mirrorId(url);
    const wanted = this.hydraBody(doc);
    const fingerprint = fingerprintOf(heldFields(wanted));
    let unlisted = false;
    if (opts.authorizing) {
      try {
        unlisted = await this.options.registry.authorizing(id, url, new Date(this.now()));
      } catch (e) {
        this.options.log.error('client metadata document mirror: the registry could not be written', { client_id: url, error: e });
        throw new ServerError('The authorization server could not register the client');
      }
    }
    if (unlisted || this.synced.get(id) !== fingerprint) {
      await this.sync(id, url, doc, wanted);
      this.synced.set(id, fingerprint, SYNC_TTL_MS);
    }
    return toClientInformation(doc, wanted.scope as string);
  }

  /**
   * At consent, for a mirror's authorization: why it must not go on, or
   * undefined. The document is read again when its copy expired (and the
   * mirror brought in line), and the authorization's redirect URI must still
   * be one it lists: a browser can take a URI the document dropped straight
   * to Hydra's authorization endpoint before Hydra's copy was updated.
   */
  async checkAuthorization(client: HydraClient | undefined, requestUrl: string | undefined): Promise<string | undefined> {
    const url = mirroredUrl(client);
    if (!url) return undefined;
    let doc: OAuthClientInformationFull;
    try {
      doc = await this.getClient(url);
    } catch (e) {
      if (e instanceof InvalidClientError) return `Its registration could not be checked: ${e.message}`;
      throw e;
    }
    const asked = requestUrl && URL.canParse(requestUrl, 'http://x') ? new URL(requestUrl, 'http://x').searchParams.get('redirect_uri') : null;
    if (asked === null) return doc.redirect_uris.length === 1 ? undefined : 'The authorization request names no redirect URI.';
    if (!doc.redirect_uris.some((r) => matchesRegisteredRedirectUri(asked, r))) {
      return `Its client metadata document (${url}) no longer lists ${asked} as a redirect URI.`;
    }
    return undefined;
  }

  /** Note that the mirror of `url` was given tokens (it is in use: not to be deleted as idle). */
  async tokenIssued(url: string): Promise<void> {
    try {
      await this.options.registry.tokenIssued(mirrorId(url), new Date(this.now()));
    } catch (e) {
      this.options.log.warn('client metadata document mirror: last use not recorded', { client_id: url, error: e });
    }
  }

  /**
   * Delete mirrors nobody uses: never given a token within an hour of their
   * last authorization (abandoned sign-ins, or documents made up by the
   * thousand), or given none for `idleMs` (longer than a refresh token lives,
   * so no token of theirs is still valid). Deleting a Hydra client deletes its
   * consents and tokens. Returns how many were deleted.
   */
  async sweep(idleMs: number, limit = 500): Promise<number> {
    const now = this.now();
    const quietSince = new Date(now - UNUSED_GRACE_MS);
    const idleSince = new Date(now - idleMs);
    let deleted = 0;
    for (const id of await this.options.registry.expired(quietSince, idleSince, limit)) {
      if (!(await this.options.registry.unlistIfExpired(id, quietSince, idleSince))) continue;
      this.synced.delete(id);
      try {
        await this.options.hydraAdmin.deleteClient(id);
        deleted++;
      } catch (e) {
        this.options.log.warn('client metadata document mirror: delete failed', { hydra_client_id: id, error: e });
      }
    }
    if (deleted) this.options.log.info('unused client metadata document mirrors deleted', { count: deleted });
    return deleted;
  }

  /** Run `sweep(idleMs)` every `everyMs` (unreferenced timer) until stopped. */
  startSweeping(everyMs: number, idleMs: number): { stop(): void } {
    const timer = setInterval(() => {
      this.sweep(idleMs).catch((e: unknown) => this.options.log.warn('client metadata document mirror sweep failed', { error: e }));
    }, everyMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }

  private secretOf(url: string): string {
    return createHmac('sha256', this.options.secret).update(`cimd-mirror-secret:${url}`).digest('base64url');
  }

  private hydraBody(doc: ClientMetadata): Record<string, unknown> {
    const secret = this.secretOf(doc.client_id);
    const mark: MirrorMark = { cimd: true, url: doc.client_id, secret_id: createHash('sha256').update(secret).digest('base64url').slice(0, 16) };
    const body: Record<string, unknown> = {
      client_id: mirrorId(doc.client_id),
      owner: MIRROR_OWNER,
      client_name: doc.client_name,
      client_uri: doc.client_uri,
      logo_uri: doc.logo_uri,
      tos_uri: doc.tos_uri,
      policy_uri: doc.policy_uri,
      contacts: doc.contacts,
      redirect_uris: doc.redirect_uris,
      grant_types: doc.grant_types ?? ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Only this server can use Hydra's token endpoint for it.
      token_endpoint_auth_method: 'client_secret_basic',
      // As for registered clients (hydraClients.ts): every scope may be asked
      // for, the person decides at consent; our resources are the audience.
      scope: REGISTRABLE_SCOPES.join(' '),
      audience: [...this.options.resources.canonical],
      metadata: mark,
    };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    return body;
  }

  /** Make Hydra's copy match `wanted` (create it, or replace it whole). */
  private async sync(id: string, url: string, doc: ClientMetadata, wanted: Record<string, unknown>): Promise<void> {
    let existing: HydraClient | undefined;
    try {
      existing = await this.options.hydraAdmin.getClient(id);
    } catch (e) {
      throw this.hydraFailure(url, e);
    }
    if (existing && !isMirrorOf(existing, url)) {
      throw new InvalidClientError(`client_id ${url} belongs to a client that was not registered from its metadata document`);
    }
    // Loopback ports added at /authorize (RFC 8252 §7.3) stay while the document keeps the port-less URI.
    const body = { ...wanted, redirect_uris: withAddedLoopbackPorts(doc.redirect_uris, existing?.redirect_uris ?? []) };
    const secret = this.secretOf(url);
    try {
      if (!existing) {
        if ((await this.options.registry.countNeverUsed()) > (this.options.maxNeverUsed ?? MAX_NEVER_USED)) {
          this.options.log.warn('client metadata documents: too many mirrors never used; new ones wait', { client_id: url });
          throw new TemporarilyUnavailableError('Too many new clients are signing in; try again later');
        }
        await this.options.hydraAdmin.createClient({ ...body, client_secret: secret });
        this.options.log.info('metadata document client mirrored into Hydra', { client_id: url, hydra_client_id: id, client_name: doc.client_name });
      } else if (fingerprintOf(heldFields(body)) !== fingerprintOf(heldFields(existing))) {
        await this.options.hydraAdmin.setClient(id, { ...body, client_secret: secret });
        this.options.log.info('metadata document client updated in Hydra', { client_id: url, hydra_client_id: id });
      }
    } catch (e) {
      if (e instanceof TemporarilyUnavailableError) throw e;
      // Two replicas creating the same mirror at once: the other one won.
      if (e instanceof HydraError && e.status === 409) return;
      throw this.hydraFailure(url, e);
    }
  }

  /** Forget what this process knows of the mirror of `url` (changed behind its back: reread on next use). */
  forget(url: string): void {
    this.synced.delete(mirrorId(url));
  }

  private hydraFailure(url: string, e: unknown): Error {
    this.options.log.error('mirroring a metadata document client into Hydra failed', { client_id: url, error: e });
    if (e instanceof HydraError && !e.unavailable && e.status !== 0) {
      return new InvalidClientError(`client metadata document at ${url} was refused by the authorization server: ${e.description || e.error}`);
    }
    return new ServerError('The authorization server could not register the client');
  }
}

/** A mirror is reread from Hydra at least this often, so another replica's change is noticed. */
const SYNC_TTL_MS = 10 * 60_000;
/** A mirror given no token within this long of its last authorization is deleted. */
const UNUSED_GRACE_MS = 3600_000;
const MAX_NEVER_USED = 1000;

/** `cimd-<host>-<sha-256 of the URL>`: readable in logs, and one id per URL. */
export function mirrorId(url: string): string {
  const host = new URL(url).host.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 100);
  return `cimd-${host}-${createHash('sha256').update(url).digest('base64url')}`;
}

/** Is `client` the mirror of `url` (made by this server from that document)? */
export function isMirrorOf(client: HydraClient, url: string): boolean {
  const mark = client.metadata as Partial<MirrorMark> | null | undefined;
  return mark?.cimd === true && mark.url === url;
}

/** The document URL a Hydra client mirrors, or undefined when it is not a mirror. */
export function mirroredUrl(client: HydraClient | undefined): string | undefined {
  const mark = client?.metadata as Partial<MirrorMark> | null | undefined;
  return mark?.cimd === true && typeof mark.url === 'string' ? mark.url : undefined;
}

/** The fields of a Hydra client we set, as Hydra gives them back (it sends "" and null for unset ones). */
function heldFields(c: HydraClient | Record<string, unknown>): Record<string, unknown> {
  const source = c as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of SYNCED_FIELDS) {
    const v = source[k];
    if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) out[k] = v;
  }
  return out;
}

const SYNCED_FIELDS = [
  'client_id',
  'owner',
  'client_name',
  'client_uri',
  'logo_uri',
  'tos_uri',
  'policy_uri',
  'contacts',
  'redirect_uris',
  'grant_types',
  'response_types',
  'token_endpoint_auth_method',
  'scope',
  'audience',
  'metadata',
] as const;

function fingerprintOf(body: Record<string, unknown>): string {
  // Objects (metadata) compared with sorted keys: Hydra need not keep their order.
  return JSON.stringify(SYNCED_FIELDS.map((k) => body[k] ?? null), (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** The document's redirect URIs, plus ports added to its `http://localhost/…` ones (the newest few). */
function withAddedLoopbackPorts(documentUris: string[], held: string[]): string[] {
  const portless = new Set(documentUris.filter((u) => isLocalhost(u) && new URL(u).port === ''));
  const added = held.filter((u) => {
    if (!isLocalhost(u) || new URL(u).port === '') return false;
    const bare = new URL(u);
    bare.port = '';
    return portless.has(bare.href) && !documentUris.includes(u);
  });
  return [...documentUris, ...added.slice(-10)];
}

const isLocalhost = (u: string) => URL.canParse(u) && new URL(u).hostname === 'localhost';

/** The client as our /authorize sees it: its id is the URL, its redirect URIs the current document's. */
function toClientInformation(doc: ClientMetadata, scope: string): OAuthClientInformationFull {
  const { jwks: _jwks, token_endpoint_auth_signing_alg: _alg, ...rest } = doc;
  return { ...rest, scope } as OAuthClientInformationFull;
}
