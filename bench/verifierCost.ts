import { createHydraAdmin } from '../src/hydra/index.js';
import { MachineClients } from '../src/auth/machineClients.js';
import { ResourceSet } from '../src/auth/resource.js';
import { HydraTokenVerifier } from '../src/auth/tokenVerifier.js';
import { createLogger } from '../src/log/logger.js';
import type { RunningHydra } from '../scripts/hydra.js';
import type { RemovedCheckCost, VerifierCost } from './results.js';
import { median } from './stats.js';


/** Median µs per call of `fn` over `batches` batches of `n` sequential calls. */
async function perCall(fn: () => Promise<unknown>, n: number, batches = 7): Promise<number> {
  for (let i = 0; i < Math.min(n, 200); i++) await fn();
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    results.push(((performance.now() - t0) * 1000) / n);
  }
  return median(results);
}

/**
 * The token check alone, in this process, against the real Hydra: far below
 * the run-to-run noise of whole requests, so measured on its own. `tokens`
 * are real Hydra tokens whose audience is `resource`.
 */
export async function verifierCost(
  hydras: { jwt: RunningHydra; opaque: RunningHydra },
  resource: URL,
  tokens: { jwt: string; opaque: string },
): Promise<VerifierCost[]> {
  const make = (h: RunningHydra, cacheSeconds: number) =>
    new HydraTokenVerifier({
      issuer: h.issuer,
      jwksUrl: new URL('/.well-known/jwks.json', h.publicUrl),
      resources: new ResourceSet([resource]),
      hydraAdmin: createHydraAdmin({ adminUrl: new URL(h.adminUrl) }),
      log: createLogger('silent'),
      introspectionCacheSeconds: cacheSeconds,
      // The bench's tokens are client-credentials tokens of machine clients (hydraTokens.ts), as in the server.
      machineClients: new MachineClients({ hydraAdmin: createHydraAdmin({ adminUrl: new URL(h.adminUrl) }), log: createLogger('silent') }),
    });
  const jwtCached = make(hydras.jwt, 60);
  const jwtEvery = make(hydras.jwt, 0);
  const opaqueCached = make(hydras.opaque, 60);
  const opaqueEvery = make(hydras.opaque, 0);
  return [
    { check: 'JWT, verified result cached', microseconds: await perCall(() => jwtCached.verifyAccessToken(tokens.jwt), 20_000) },
    { check: "JWT, signature checked (Hydra's RSA key)", microseconds: await perCall(() => jwtEvery.verifyAccessToken(tokens.jwt), 300) },
    { check: 'opaque, introspection cached', microseconds: await perCall(() => opaqueCached.verifyAccessToken(tokens.opaque), 20_000) },
    { check: 'opaque, introspected at Hydra', microseconds: await perCall(() => opaqueEvery.verifyAccessToken(tokens.opaque), 300) },
  ];
}

/**
 * The removed-subject check on the cached-JWT path (the cheapest path, where
 * any added cost shows most): the same verifier with and without a list of
 * `listSize` removed subjects, batch by batch in turn.
 */
export async function removedCheckCost(hydra: RunningHydra, resource: URL, token: string, listSize = 1000): Promise<RemovedCheckCost> {
  const removed = new Set(Array.from({ length: listSize }, (_, i) => `removed-${i}`));
  const make = (removedSubjects?: Set<string>) =>
    new HydraTokenVerifier({
      issuer: hydra.issuer,
      jwksUrl: new URL('/.well-known/jwks.json', hydra.publicUrl),
      resources: new ResourceSet([resource]),
      hydraAdmin: createHydraAdmin({ adminUrl: new URL(hydra.adminUrl) }),
      log: createLogger('silent'),
      introspectionCacheSeconds: 60,
      machineClients: new MachineClients({ hydraAdmin: createHydraAdmin({ adminUrl: new URL(hydra.adminUrl) }), log: createLogger('silent') }),
      ...(removedSubjects ? { removedSubjects } : {}),
    });
  const without = make();
  const withList = make(removed);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 11; i++) {
    a.push(await perCall(() => without.verifyAccessToken(token), 20_000, 1));
    b.push(await perCall(() => withList.verifyAccessToken(token), 20_000, 1));
  }
  const added = a.map((x, i) => b[i]! - x);
  return {
    removedSubjects: listSize,
    withoutMicroseconds: median(a),
    withMicroseconds: median(b),
    addedMicroseconds: median(added),
    addedRange: [Math.min(...added), Math.max(...added)],
  };
}
