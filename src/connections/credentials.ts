import type { Logger } from '../log/logger.js';
import { type Connection, ConnectionLockError, type ConnectionsStore } from '../store/connectionsStore.js';
import { LruCache } from '../lib/lruCache.js';
import { type ReadConnectionVersion, versionsFromStore } from '../store/connectionVersions.js';
import { failureFields, type ProviderClient, ProviderError } from './providerClient.js';
import { type CredentialSealer, SealError, type StoredCredential } from './sealing.js';
import type { CredentialOutcome } from '../metrics/metrics.js';

/**
 * The person has no usable connection to `provider`: never connected, the
 * grant was revoked at the provider, or its ciphertext cannot be opened any
 * more. The MCP layer turns it into a request to connect (URL elicitation).
 */
export class ConnectionRequiredError extends Error {
  override name = 'ConnectionRequiredError';
  constructor(
    readonly provider: string,
    readonly reason: 'missing' | 'reconnect',
  ) {
    super(reason === 'missing' ? `not connected to ${provider}` : `the connection to ${provider} must be made again`);
  }
}

/** The provider could not be reached to refresh the token: the connection is kept, the call fails for now. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError';
  constructor(
    readonly provider: string,
    displayName = provider,
  ) {
    super(`${displayName} cannot be reached just now; try again in a moment`);
  }
}

/** What a tool holds for one provider (ctx.credentials.<provider>). */
export interface ToolCredential {
  /**
   * A valid access token for this person at the provider, refreshed first
   * when it expires within a minute. Never log it or return it to the client.
   */
  accessToken(): Promise<string>;
}

export interface CredentialServiceOptions {
  store: ConnectionsStore;
  sealer: CredentialSealer;
  providers: ReadonlyMap<string, ProviderClient>;
  log: Logger;
  /** Refresh when the access token has fewer seconds than this left (default 60; a quarter of a shorter lifetime). */
  refreshWithinSeconds?: number;
  /** Opened credentials kept in memory (default 1,000). */
  cacheSize?: number;
  /**
   * How a use reads the row's version (src/connections/connectionVersions.ts):
   * default the store's `get`; production composes the prepared read on SQLite.
   */
  versions?: ReadConnectionVersion;
  /** Told every use of a stored credential (metrics, the audit trail), with the tool call's request id when known. */
  onUse?: (provider: string, outcome: CredentialOutcome, sub: string, requestId?: string) => void;
  /**
   * Told how long each of a tool's requests for an access token took, and how
   * it ended: every request, including those that shared another's refresh
   * (refreshed) and those for a connection never made (reconnect).
   */
  onTimed?: (provider: string, outcome: CredentialOutcome, seconds: number) => void;
  now?: () => number;
}

export type { CredentialOutcome };

export interface CredentialService {
  /** The credentials a tool declared, for one person; uses are reported with `requestId` (the call's). */
  forTool(sub: string, providers: readonly string[], requestId?: string): Record<string, ToolCredential>;
  /** Whether the person has a usable connection now (the MCP layer waits on this after asking them to connect). */
  isConnected(sub: string, provider: string): Promise<boolean>;
  /**
   * Drop this replica's opened copy of the person's credential for `provider`
   * (or of all their credentials) now: disconnect and account removal call it.
   * Other replicas need no telling: each use checks the row first.
   */
  forget(sub: string, provider?: string): void;
}

/**
 * How long an opened credential stays in memory after its last use. Not what
 * keeps it current: every use first checks the row (ConnectionVersion), so
 * this only bounds how long plaintext outlives its last use on a quiet replica.
 */
const OPENED_TTL_MS = 30_000;

/** An opened credential and the ciphertext it was opened from (its version). */
interface Opened {
  sealed: string;
  credential: StoredCredential;
}

/**
 * Hands tools fresh access tokens for the person calling. Refresh is
 * single-flight: one per connection in this process (shared promise) and
 * across replicas (the store's refresh lock); whoever waits re-reads the row
 * and uses the token the winner wrote.
 *
 * Opened credentials are kept in memory (bounded in number and time), keyed by
 * person and provider, so a use decrypts nothing while the credential is
 * unchanged. Nothing kept outlives a removal or a revocation on any replica:
 * each use reads the row's version from the shared database first (one cheap
 * indexed read) and serves the kept copy only while the row exists, is active
 * and still holds the ciphertext it was opened from. A refresh, a reconnect, a
 * disconnect, an account removal or a refused refresh on any replica changes or
 * deletes the row, and the next use anywhere sees it. This replica also drops
 * its copy at once (`forget`, and on refresh it keeps the new one instead).
 */
export function createCredentialService(options: CredentialServiceOptions): CredentialService {
  const { store, sealer, providers, log } = options;
  const now = options.now ?? Date.now;
  const margin = options.refreshWithinSeconds ?? 60;
  const versionOf = options.versions ?? versionsFromStore(store);
  const opened = new LruCache<Opened>(options.cacheSize ?? 1_000, now);
  const keyOf = (sub: string, provider: string) => `${sub}\0${provider}`;
  const keep = (sub: string, provider: string, entry: Opened) => opened.set(keyOf(sub, provider), entry, OPENED_TTL_MS);
  // A person's every credential: one key per configured provider, no scan.
  const forget = (sub: string, provider?: string) => {
    if (provider !== undefined) opened.delete(keyOf(sub, provider));
    else for (const name of providers.keys()) opened.delete(keyOf(sub, name));
  };
  const refreshing = new Map<string, Promise<string>>();
  // Refresh a minute before expiry, or at three quarters of a shorter lifetime.
  const fresh = (c: StoredCredential) => {
    if (c.expiresAt === undefined) return true;
    const lead = c.issuedAt !== undefined ? Math.min(margin, (c.expiresAt - c.issuedAt) / 4) : margin;
    return c.expiresAt - lead > now() / 1000;
  };
  const stamped = (c: StoredCredential): StoredCredential => ({ ...c, issuedAt: Math.floor(now() / 1000) });

  /**
   * The credential sealed in `sealed` (the kept copy when it was opened from
   * this very ciphertext), or why it cannot be opened (logged). A key missing
   * from CONNECTION_KEYS is the operator's to fix: the row is left as it is,
   * so putting the key back restores it; an altered ciphertext is marked.
   */
  const open = async (sub: string, provider: string, sealed: string): Promise<StoredCredential | SealError['reason']> => {
    const hit = opened.get(keyOf(sub, provider));
    if (hit && hit.sealed === sealed) return hit.credential;
    try {
      const credential = await sealer.open(sealed, { sub, provider });
      keep(sub, provider, { sealed, credential });
      return credential;
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      forget(sub, provider);
      log.error('stored credential cannot be opened; the person must connect again', { sub, provider, reason: e.reason });
      return e.reason;
    }
  };

  const refresh = async (sub: string, provider: string, requestId: string | undefined): Promise<string> => {
    const client = providers.get(provider)!;
    let token: string | undefined;
    let failure: Error | undefined;
    // The credential this refresh wrote, kept once the write is in (it replaces the old copy).
    let refreshed: Opened | undefined;
    const locked = store.withRefreshLock(sub, provider, async (current) => {
      if (current.status !== 'active') {
        failure = new ConnectionRequiredError(provider, 'reconnect');
        return undefined;
      }
      const credential = await open(sub, provider, current.sealed);
      if (typeof credential === 'string') {
        failure = new ConnectionRequiredError(provider, 'reconnect');
        return credential === 'unknown_key' ? undefined : { status: 'needs_reconnect' };
      }
      // Another request or replica refreshed while we waited for the lock.
      if (fresh(credential)) {
        token = credential.accessToken;
        return undefined;
      }
      if (!credential.refreshToken) {
        failure = new ConnectionRequiredError(provider, 'reconnect');
        return { status: 'needs_reconnect' };
      }
      try {
        const next = stamped(await client.refresh(credential.refreshToken));
        token = next.accessToken;
        options.onUse?.(provider, 'refreshed', sub, requestId);
        const sealed = await sealer.seal(next, { sub, provider });
        refreshed = { sealed, credential: next };
        return { sealed, keyId: sealer.newestKeyId, scope: next.scope ?? null, expiresAt: next.expiresAt ?? null };
      } catch (e) {
        if (!(e instanceof ProviderError)) throw e;
        if (e.kind === 'invalid_grant') {
          log.warn('provider refused the refresh token; the person must connect again', { sub, provider, ...failureFields(e) });
          failure = new ConnectionRequiredError(provider, 'reconnect');
          return { status: 'needs_reconnect' };
        }
        log.warn('refresh failed; connection kept', { sub, provider, ...failureFields(e) });
        failure = new ProviderUnavailableError(provider, client.displayName);
        return undefined;
      }
    });
    let row: Connection | undefined;
    try {
      row = await locked;
    } catch (e) {
      // Another refresh held the connection too long: as good as the provider being slow.
      if (!(e instanceof ConnectionLockError)) throw e;
      log.warn('refresh lock not obtained in time', { sub, provider });
      throw new ProviderUnavailableError(provider, client.displayName);
    }
    if (failure) {
      forget(sub, provider);
      throw failure;
    }
    // The row vanished (disconnected meanwhile).
    if (token === undefined) throw new ConnectionRequiredError(provider, 'missing');
    if (refreshed && row?.sealed === refreshed.sealed) keep(sub, provider, refreshed);
    return token;
  };

  const accessToken = async (sub: string, provider: string, requestId: string | undefined): Promise<{ token: string; outcome: 'ok' | 'refreshed' }> => {
    // The row's version, from the shared database, on every use: what any replica changed is seen here.
    const row = await versionOf(sub, provider);
    if (!row) {
      forget(sub, provider);
      throw new ConnectionRequiredError(provider, 'missing');
    }
    const credential = row.status === 'active' ? await open(sub, provider, row.sealed) : undefined;
    if (credential === undefined || typeof credential === 'string') {
      forget(sub, provider);
      if (row.status === 'active' && credential !== 'unknown_key') await store.markNeedsReconnect(sub, provider);
      options.onUse?.(provider, 'reconnect', sub, requestId);
      throw new ConnectionRequiredError(provider, 'reconnect');
    }
    if (fresh(credential)) {
      options.onUse?.(provider, 'ok', sub, requestId);
      return { token: credential.accessToken, outcome: 'ok' };
    }
    const key = `${sub}\0${provider}`;
    let pending = refreshing.get(key);
    if (!pending) {
      pending = refresh(sub, provider, requestId).finally(() => refreshing.delete(key));
      refreshing.set(key, pending);
    }
    try {
      return { token: await pending, outcome: 'refreshed' };
    } catch (e) {
      if (e instanceof ConnectionRequiredError) options.onUse?.(provider, 'reconnect', sub, requestId);
      if (e instanceof ProviderUnavailableError) options.onUse?.(provider, 'unavailable', sub, requestId);
      throw e;
    }
  };

  /** accessToken, timed from the tool's request to its answer. */
  const timedAccessToken = async (sub: string, provider: string, requestId: string | undefined): Promise<string> => {
    const started = performance.now();
    let outcome: CredentialOutcome = 'unavailable';
    try {
      const got = await accessToken(sub, provider, requestId);
      outcome = got.outcome;
      return got.token;
    } catch (e) {
      // Anything else (the database failing) is, to the tool, the credential being unavailable.
      if (e instanceof ConnectionRequiredError) outcome = 'reconnect';
      throw e;
    } finally {
      options.onTimed?.(provider, outcome, (performance.now() - started) / 1000);
    }
  };

  return {
    forTool(sub, names, requestId) {
      const out: Record<string, ToolCredential> = {};
      for (const provider of names) out[provider] = { accessToken: () => timedAccessToken(sub, provider, requestId) };
      return out;
    },
    async isConnected(sub, provider) {
      const row = await versionOf(sub, provider);
      return row?.status === 'active';
    },
    forget,
  };
}
