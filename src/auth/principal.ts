/**
 * The principal: who is calling, as a verified access token says. It is
 * its own module so the tool contract and the MCP transports depend on the
 * idea of a caller, not on how Hydra's tokens are checked.
 */
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';

/** Who is calling: what every tool receives, taken only from a verified token. */
export interface Principal {
  sub: string;
  clientId: string;
  scopes: string[];
  /** Token expiry, seconds since the epoch. */
  expiresAt: number;
}

/**
 * The SDK's AuthInfo for a verified token held by `principal`. AuthInfo has
 * no field for the subject, so it travels in `extra.sub`; only this module
 * reads or writes it there.
 */
export function toAuthInfo(principal: Principal, token: string, resource?: URL): AuthInfo {
  return {
    token,
    clientId: principal.clientId,
    scopes: principal.scopes,
    expiresAt: principal.expiresAt,
    ...(resource ? { resource } : {}),
    extra: { sub: principal.sub },
  };
}

/**
 * The principal an AuthInfo carries, or undefined when it names no subject:
 * a request without a `sub` has no one to act for, so it gets no principal.
 */
export function principalOf(auth: AuthInfo | undefined): Principal | undefined {
  const sub = auth?.extra?.sub;
  if (!auth || typeof sub !== 'string' || !sub) return undefined;
  return { sub, clientId: auth.clientId, scopes: auth.scopes, expiresAt: auth.expiresAt ?? 0 };
}
