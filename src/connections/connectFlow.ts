import { hash, randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { ConnectionsStore } from '../store/connectionsStore.js';
import type { ConnectStatesStore } from '../store/connectStatesStore.js';
import { failureFields, type ProviderClient, ProviderError } from './providerClient.js';
import { type CredentialSealer, SealError } from './sealing.js';

/** Why a connect attempt was refused; `status` is the HTTP status of the page that says so. */
export class ConnectError extends Error {
  override name = 'ConnectError';
  constructor(
    readonly code: 'no_state' | 'unknown_state' | 'unopenable_state' | 'mix_up' | 'other_browser' | 'other_person' | 'provider_refused' | 'provider_unavailable' | 'unknown_provider',
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ConnectionView {
  provider: string;
  displayName: string;
  status: 'connected' | 'needs_reconnect' | 'not_connected';
  /** Epoch ms of the last grant, when connected. */
  since?: number;
}

export interface ConnectFlow {
  /** Where the person's browser goes, and the secret to keep in that browser's cookie until the callback. */
  begin(sub: string, provider: string, elicitationId?: string): Promise<{ authorizationUrl: URL; browserBinding: string }>;
  /**
   * The provider's answer reached our callback: check it belongs to an attempt
   * this browser and this person started for this provider, then redeem the
   * code and store the credential sealed. Throws ConnectError; stores nothing then.
   */
  finish(params: { provider: string; callbackUrl: URL; browserBinding: string | undefined; sub: string | undefined }): Promise<{ sub: string; provider: string; elicitationId?: string }>;
  /** RFC 7009 revocation at the provider where it has an endpoint, then the row goes; `revoked` false when the provider could not be told. */
  disconnect(sub: string, provider: string): Promise<{ existed: boolean; revoked: boolean }>;
  /** Revoke every connection of the person at its provider (best effort, for account removal); rows stay for the caller to delete. */
  revokeAll(sub: string): Promise<void>;
  /** Every configured provider with this person's status. */
  list(sub: string): Promise<ConnectionView[]>;
  /** Our callback for `provider` (the redirect URI registered there). */
  redirectUri(provider: string): string;
  displayName(provider: string): string;
  has(provider: string): boolean;
}

export interface ConnectFlowOptions {
  store: ConnectionsStore;
  /** Where attempts in flight wait for the callback. */
  states: ConnectStatesStore;
  sealer: CredentialSealer;
  providers: ReadonlyMap<string, ProviderClient>;
  publicBaseUrl: URL;
  log: Logger;
  /** How long a started attempt stays valid (default 10 minutes). */
  attemptMs?: number;
  /** Drops this replica's opened copies of a person's credential (CredentialService.forget) once it is replaced or revoked. */
  forget?: (sub: string, provider?: string) => void;
  now?: () => number;
}

const sha256 = (v: string) => hash('sha256', v, 'base64url');
const secret = () => randomBytes(32).toString('base64url');
/** The PKCE verifier of a connect attempt is sealed like a credential, bound to the same person and provider (re-encryption opens it with this). */
export const verifierBinding = (sub: string, provider: string) => ({ sub, provider: `${provider}#pkce` });

/**
 * The authorization-code flow (with PKCE and `state`) that connects a
 * person's account at a provider: one-time state stored server-side by hash,
 * bound to the person, the provider (mix-up defence: the callback names its
 * provider and must match) and the browser (a cookie secret, so a code
 * delivered to another browser is refused).
 */
export function createConnectFlow(options: ConnectFlowOptions): ConnectFlow {
  const { store, states, sealer, providers, log } = options;
  const now = options.now ?? Date.now;
  const base = options.publicBaseUrl.href.replace(/\/$/, '');
  const redirectUri = (provider: string) => `${base}/account/connections/${encodeURIComponent(provider)}/callback`;
  const client = (provider: string) => {
    const c = providers.get(provider);
    if (!c) throw new ConnectError('unknown_provider', `No service called "${provider}" is configured.`, 404);
    return c;
  };

  return {
    redirectUri,
    displayName: (provider) => providers.get(provider)?.displayName ?? provider,
    has: (provider) => providers.has(provider),

    async begin(sub, provider, elicitationId) {
      const c = client(provider);
      const state = secret();
      const codeVerifier = secret();
      const browserBinding = secret();
      await states.put({
        stateHash: sha256(state),
        sub,
        provider,
        sealedVerifier: await sealer.seal({ accessToken: codeVerifier }, verifierBinding(sub, provider)),
        browserBindingHash: sha256(browserBinding),
        ...(elicitationId ? { elicitationId } : {}),
        expiresAt: now() + (options.attemptMs ?? 10 * 60_000),
      });
      try {
        const authorizationUrl = await c.authorizationUrl({ redirectUri: redirectUri(provider), state, codeVerifier });
        return { authorizationUrl, browserBinding };
      } catch (e) {
        await states.take(sha256(state));
        if (!(e instanceof ProviderError)) throw e;
        log.warn('connect: the provider cannot be reached to start', { sub, provider, ...failureFields(e) });
        throw new ConnectError('provider_unavailable', `${c.displayName} cannot be reached just now. Try again in a moment.`, 503);
      }
    },

    async finish({ provider, callbackUrl, browserBinding, sub }) {
      const c = client(provider);
      const state = callbackUrl.searchParams.get('state');
      if (!state) throw new ConnectError('no_state', 'This answer carries no state, so it cannot be matched to a connection you started.', 400);
      // Taken (deleted) on first sight: a replayed callback finds nothing.
      const attempt = await states.take(sha256(state));
      if (!attempt) throw new ConnectError('unknown_state', 'This connection attempt is unknown, has expired or was already used. Start again from your account page.', 400);
      if (attempt.provider !== provider) {
        log.warn('connect callback for another provider than the attempt (mix-up)', { sub: attempt.sub, provider, started: attempt.provider });
        throw new ConnectError('mix_up', 'This answer came back for a different service than the one you started connecting. Nothing was connected.', 400);
      }
      if (!browserBinding || sha256(browserBinding) !== attempt.browserBindingHash) {
        throw new ConnectError('other_browser', 'This connection was started in another browser. Start again from this browser.', 400);
      }
      if (sub !== attempt.sub) throw new ConnectError('other_person', 'This connection was started by another account than the one signed in here. Nothing was connected.', 403);
      const error = callbackUrl.searchParams.get('error');
      if (error) {
        // RFC 6749 §4.1.2.1: access_denied is the person's choice; any other error (invalid_scope, unauthorized_client…) is the catalogue's or the provider's to fix.
        const description = callbackUrl.searchParams.get('error_description');
        log[error === 'access_denied' ? 'info' : 'warn']('connect: the provider sent an error back instead of a code', {
          sub: attempt.sub,
          provider,
          oauth_error: error.slice(0, 64),
          ...(description ? { reason: description.slice(0, 300) } : {}),
        });
        throw new ConnectError('provider_refused', `${c.displayName} did not grant access (${error.slice(0, 64)}). Nothing was connected.`, 400);
      }
      let codeVerifier: string;
      try {
        codeVerifier = (await sealer.open(attempt.sealedVerifier, verifierBinding(attempt.sub, provider))).accessToken;
      } catch (e) {
        // Its key was dropped from CONNECTION_KEYS (or replaced) while the person was at the provider: the attempt is spent, they start again.
        if (!(e instanceof SealError)) throw e;
        log.warn('connect: the attempt\'s sealed verifier cannot be opened', { sub: attempt.sub, provider, reason: e.reason });
        throw new ConnectError('unopenable_state', 'This connect link has expired. Nothing was connected; start again from your account page.', 400);
      }
      let credential;
      try {
        credential = { ...(await c.exchangeCode({ callbackUrl, redirectUri: redirectUri(provider), expectedState: state, codeVerifier })), issuedAt: Math.floor(now() / 1000) };
      } catch (e) {
        if (!(e instanceof ProviderError)) throw e;
        log.warn('connect: code exchange failed', { sub: attempt.sub, provider, ...failureFields(e) });
        if (e.kind === 'unavailable') throw new ConnectError('provider_unavailable', `${c.displayName} cannot be reached just now. Start again in a moment.`, 503);
        throw new ConnectError('provider_refused', `${c.displayName} refused the connection (${e.code ?? e.kind}). Start again from your account page.`, 400);
      }
      await store.upsert({
        sub: attempt.sub,
        provider,
        sealed: await sealer.seal(credential, { sub: attempt.sub, provider }),
        keyId: sealer.newestKeyId,
        ...(credential.scope ? { scope: credential.scope } : {}),
        ...(credential.expiresAt !== undefined ? { expiresAt: credential.expiresAt } : {}),
      });
      options.forget?.(attempt.sub, provider);
      log.info('account connected', { sub: attempt.sub, provider });
      return { sub: attempt.sub, provider, ...(attempt.elicitationId ? { elicitationId: attempt.elicitationId } : {}) };
    },

    async disconnect(sub, provider) {
      const c = client(provider);
      const row = await store.get(sub, provider);
      if (!row) return { existed: false, revoked: true };
      let revoked = true;
      try {
        await c.revoke(await sealer.open(row.sealed, { sub, provider }));
      } catch (e) {
        // The row goes anyway: we stop using the grant even when the provider cannot be told now.
        revoked = false;
        log.warn('disconnect: revocation at the provider failed; the connection is deleted here', { sub, provider, ...revocationFailure(e) });
      }
      await store.delete(sub, provider);
      options.forget?.(sub, provider);
      log.info('account disconnected', { sub, provider, revoked });
      return { existed: true, revoked };
    },

    async revokeAll(sub) {
      for (const { provider } of await store.list(sub)) {
        const row = await store.get(sub, provider);
        const c = providers.get(provider);
        if (!row || !c) continue;
        try {
          await c.revoke(await sealer.open(row.sealed, { sub, provider }));
        } catch (e) {
          log.warn('account removal: revocation at the provider failed', { sub, provider, ...revocationFailure(e) });
        }
      }
      // The rows go with the rest of the person's data (the caller's); every use checks them first.
      options.forget?.(sub);
    },

    async list(sub) {
      const rows = new Map((await store.list(sub)).map((r) => [r.provider, r]));
      return [...providers.values()].map((p) => {
        const r = rows.get(p.name);
        return {
          provider: p.name,
          displayName: p.displayName,
          status: !r ? 'not_connected' : r.status === 'active' ? 'connected' : 'needs_reconnect',
          ...(r ? { since: r.updatedAt } : {}),
        };
      });
    },
  };
}

/** Why a revocation failed, for its log line: the provider's answer, or why the stored credential could not be opened to revoke it. */
function revocationFailure(e: unknown): Record<string, unknown> {
  if (e instanceof ProviderError) return failureFields(e);
  if (e instanceof SealError) return { kind: 'unopenable', reason: `the stored credential cannot be opened (${e.reason})` };
  return { error: e instanceof Error ? e.name : typeof e };
}
