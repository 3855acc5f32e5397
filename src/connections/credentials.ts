import type { Logger } from '../log/logger.js';
import { type Connection, ConnectionLockError, type ConnectionsStore } from '../store/connectionsStore.js';
import { LruCache } from '../lib/lruCache.js';
import { type ProviderClient, ProviderError } from './providerClient.js';
import { type CredentialSealer, SealError, type StoredCredential } from './sealing.js';

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
  /** Told every use of a stored credential (metrics, the audit trail), with the tool call's request id when known. */
  onUse?: (provider: string, outcome: 'ok' | 'refreshed' | 'reconnect' | 'unavailable', sub: string, requestId?: string) => void;
  now?: () => number;
}

export interface CredentialService {
  /** The credentials a tool declared, for one person; uses are reported with `requestId` (the call's). */
  forTool(sub: string, providers: readonly string[], requestId?: string): Record<string, ToolCredential>;
  /** Whether the person has a usable connection now (the MCP layer waits on this after asking them to connect). */
  isConnected(sub: string, provider: string): Promise<boolean>;
}

// How long an opened credential is reused without reading the row again.
const OPENED_TTL_MS = 30_000;

/**
 * Hands tools fresh access tokens for the person calling. Refresh is
 * single-flight: one per connection in this process (shared promise) and
 * across replicas (the store's refresh lock); whoever waits re-reads the row
 * and uses the token the winner wrote.
 */
export function createCredentialService(options: CredentialServiceOptions): CredentialService {
  const { store, sealer, providers, log } = options;
  const now = options.now ?? Date.now;
  const margin = options.refreshWithinSeconds ?? 60;
  // Keyed by sub, provider and the row's update time: any write (refresh, reconnect) makes a new key.
  const opened = new LruCache<StoredCredential>(options.cacheSize ?? 1_000, now);
  const refreshing = new Map<string, Promise<string>>();
  // Refresh a minute before expiry, or at three quarters of a shorter lifetime.
  const fresh = (c: StoredCredential) => {
    if (c.expiresAt === undefined) return true;
    const lead = c.issuedAt !== undefined ? Math.min(margin, (c.expiresAt - c.issuedAt) / 4) : margin;
    return c.expiresAt - lead > now() / 1000;
  };
  const stamped = (c: StoredCredential): StoredCredential => ({ ...c, issuedAt: Math.floor(now() / 1000) });

  /**
   * The row's credential, or why it cannot be opened (logged). A key missing
   * from CONNECTION_KEYS is the operator's to fix: the row is left as it is,
   * so putting the key back restores it; an altered ciphertext is marked.
   */
  const unopened = new WeakMap<Connection, SealError['reason']>();
  const open = async (row: Connection): Promise<StoredCredential | undefined> => {
    const key = `${row.sub}\0${row.provider}\0${row.updatedAt}`;
    const hit = opened.get(key);
    if (hit) return hit;
    try {
      const credential = await sealer.open(row.sealed, { sub: row.sub, provider: row.provider });
      opened.set(key, credential, OPENED_TTL_MS);
      return credential;
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      log.error('stored credential cannot be opened; the person must connect again', { sub: row.sub, provider: row.provider, reason: e.reason });
      unopened.set(row, e.reason);
      return undefined;
    }
  };

  const refresh = async (sub: string, provider: string, requestId: string | undefined): Promise<string> => {
    const client = providers.get(provider)!;
    let token: string | undefined;
    let failure: Error | undefined;
    const locked = store.withRefreshLock(sub, provider, async (current) => {
      if (current.status !== 'active') {
        failure = new ConnectionRequiredError(provider, 'reconnect');
        return undefined;
      }
      const credential = await open(current);
      if (!credential) {
        failure = new ConnectionRequiredError(provider, 'reconnect');
        return unopened.get(current) === 'unknown_key' ? undefined : { status: 'needs_reconnect' };
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
        return { sealed: await sealer.seal(next, { sub, provider }), keyId: sealer.newestKeyId, scope: next.scope ?? null, expiresAt: next.expiresAt ?? null };
      } catch (e) {
        if (!(e instanceof ProviderError)) throw e;
        if (e.kind === 'invalid_grant') {
          log.warn('provider refused the refresh token; the person must connect again', { sub, provider });
          failure = new ConnectionRequiredError(provider, 'reconnect');
          return { status: 'needs_reconnect' };
        }
        log.warn('refresh failed; connection kept', { sub, provider, kind: e.kind, code: e.code });
        failure = new ProviderUnavailableError(provider, client.displayName);
        return undefined;
      }
    });
    try {
      await locked;
    } catch (e) {
      // Another refresh held the connection too long: as good as the provider being slow.
      if (!(e instanceof ConnectionLockError)) throw e;
      log.warn('refresh lock not obtained in time', { sub, provider });
      throw new ProviderUnavailableError(provider, client.displayName);
    }
    if (failure) throw failure;
    // The row vanished (disconnected meanwhile).
    if (token === undefined) throw new ConnectionRequiredError(provider, 'missing');
    return token;
  };

  const accessToken = async (sub: string, provider: string, requestId: string | undefined): Promise<string> => {
    const row = await store.get(sub, provider);
    if (!row) throw new ConnectionRequiredError(provider, 'missing');
    const credential = row.status === 'active' ? await open(row) : undefined;
    if (!credential) {
      if (row.status === 'active' && unopened.get(row) !== 'unknown_key') await store.markNeedsReconnect(sub, provider);
      options.onUse?.(provider, 'reconnect', sub, requestId);
      throw new ConnectionRequiredError(provider, 'reconnect');
    }
    if (fresh(credential)) {
      options.onUse?.(provider, 'ok', sub, requestId);
      return credential.accessToken;
    }
    const key = `${sub}\0${provider}`;
    let pending = refreshing.get(key);
    if (!pending) {
      pending = refresh(sub, provider, requestId).finally(() => refreshing.delete(key));
      refreshing.set(key, pending);
    }
    try {
      return await pending;
    } catch (e) {
      if (e instanceof ConnectionRequiredError) options.onUse?.(provider, 'reconnect', sub, requestId);
      if (e instanceof ProviderUnavailableError) options.onUse?.(provider, 'unavailable', sub, requestId);
      throw e;
    }
  };

  return {
    forTool(sub, names, requestId) {
      const out: Record<string, ToolCredential> = {};
      for (const provider of names) out[provider] = { accessToken: () => accessToken(sub, provider, requestId) };
      return out;
    },
    async isConnected(sub, provider) {
      const row = await store.get(sub, provider);
      return row?.status === 'active';
    },
  };
}
