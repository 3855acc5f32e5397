/**
 * The principal: who is calling, as a verified access token says. It is
 * its own module so the tool contract and the MCP transports depend on the
 * idea of a caller, not on how Hydra's tokens are checked.
 */
import type { AuthInfo } from './types.js';

/**
 * `person`: a token a person granted (authorization code flow, `sub` is the
 * person). `machine`: a client-credentials token of an operator-made machine
 * client (no person present; `sub` is the client id). Only the token verifier
 * decides `machine` (src/auth/machineClients.ts).
 */
export type PrincipalKind = 'person' | 'machine';

/** Who is calling: what every tool receives, taken only from a verified token. */
export interface Principal {
  sub: string;
  clientId: string;
  scopes: string[];
  /** Token expiry, seconds since the epoch. */
  expiresAt: number;
  /** A person, or a machine client calling with no person present; data is keyed by `sub` either way. */
  kind: PrincipalKind;
}

/**
 * The SDK's AuthInfo for a verified token held by `principal`. AuthInfo has
 * no field for the subject, so it travels in `extra.sub` (and the kind in
 * `extra.kind`); only this module reads or writes them there. A principal
 * given without `kind` is a person: only the verifier makes machines.
 */
export function toAuthInfo(principal: Omit<Principal, 'kind'> & { kind?: PrincipalKind }, token: string, resource?: URL): AuthInfo {
  return {
    token,
    clientId: principal.clientId,
    scopes: principal.scopes,
    expiresAt: principal.expiresAt,
    ...(resource ? { resource } : {}),
    extra: { sub: principal.sub, kind: principal.kind ?? 'person' },
  };
}

/**
 * The principal an AuthInfo carries, or undefined when it names no subject
 * or no known kind: a request without a `sub` has no one to act for, so it
 * gets no principal.
 */
export function principalOf(auth: AuthInfo | undefined): Principal | undefined {
  const sub = auth?.extra?.sub;
  const kind = auth?.extra?.kind;
  if (!auth || typeof sub !== 'string' || !sub || (kind !== 'person' && kind !== 'machine')) return undefined;
  return { sub, clientId: auth.clientId, scopes: auth.scopes, expiresAt: auth.expiresAt ?? 0, kind };
}
