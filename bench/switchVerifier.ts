import type { AccessTokenVerifier } from '../src/auth/tokenVerifier.js';
import type { VerifierParts } from '../src/main.js';
import { fixedPrincipalVerifier } from './fixedPrincipal.js';

/** The bearer token of a baseline request (bench only): the switch verifier answers it with the fixed principal. */
export const BASELINE_TOKEN = 'bench-baseline-fixed-principal';
/** The shared-sessions scenario's bearer token (bench only): as long as the baseline's; its server's verifier (fixed-sessions) names another fixed person. */
export const SESSIONS_TOKEN = 'bench-sessions-fixed-principal';

/**
 * One server, both sides of a pair: requests bearing BASELINE_TOKEN get the
 * fixed principal at no cost, every other token the scenario's real check.
 * Everything else a request runs (express, our middleware, the SDK, the tool)
 * is the same code, with the same JIT state: two servers, even in one
 * process, each compile their own closures and came out a few % apart by
 * themselves, run to run.
 */
export function switchVerifier(real: (parts: VerifierParts) => AccessTokenVerifier): (parts: VerifierParts) => AccessTokenVerifier {
  return (parts) => {
    const scenario = real(parts);
    const baseline = fixedPrincipalVerifier(parts);
    return {
      verifyAccessToken: (token) => (token === BASELINE_TOKEN ? baseline : scenario).verifyAccessToken(token),
      isActiveNow: (token) => (token === BASELINE_TOKEN ? baseline : scenario).isActiveNow(token),
    };
  };
}
