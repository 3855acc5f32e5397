import { toAuthInfo } from '../src/auth/principal.js';
import type { AccessTokenVerifier } from '../src/auth/tokenVerifier.js';
import { REGISTRABLE_SCOPES } from '../src/auth/scopes.js';
import type { VerifierParts } from '../src/main.js';

/** The fixed person of the baseline. */
export const BASELINE_SUB = 'bench-baseline-user';
/** The shared-sessions scenario's fixed person: another subject, so its sessions can be told apart from the baseline's (bench/switchSessionsStore.ts). */
export const SESSIONS_SUB = 'bench-sessions-user';

/**
 * The baseline: every bearer token "verifies" as one fixed person (`sub`), at no cost.
 * Bench-only, composed through startServer's verifier parameter: the rest of
 * the app (header parsing, scopes, transports, the tool) runs unchanged.
 */
export function fixedPrincipalVerifier({ config }: VerifierParts, sub = BASELINE_SUB): AccessTokenVerifier {
  const principal = {
    sub,
    clientId: 'bench-baseline',
    scopes: [...REGISTRABLE_SCOPES],
    expiresAt: Math.floor(Date.now() / 1000) + 24 * 3600,
  };
  return {
    verifyAccessToken: async (token) => toAuthInfo(principal, token, config.resourceUrl),
    isActiveNow: async () => true,
  };
}
