/**
 * One server under benchmark, in its own process (so the load generator and
 * the server do not share an event loop). Started by bench/run.ts with an
 * IPC channel and --expose-gc; told which verifier to compose by
 * BENCH_VERIFIER. Reports { ready, url, metricsUrl }, answers { memory } with
 * process.memoryUsage() taken after a full GC.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { whoamiWithCredential } from './credentialTool.js';
import { fixedPrincipalVerifier } from './fixedPrincipal.js';
import { introspectEverythingVerifier } from './introspectEverything.js';
import { hydraTokenVerifier, startServer, type StartOptions } from '../src/main.js';

const verifiers: Record<string, StartOptions['verifier']> = {
  hydra: (parts) => hydraTokenVerifier(parts),
  // The quick memory run: the same verifier with a smaller cache bound to cross.
  'hydra-small-cache': (parts) => hydraTokenVerifier(parts, { cacheSize: Number(process.env.BENCH_CACHE_BOUND) }),
  fixed: fixedPrincipalVerifier,
  'introspect-everything': introspectEverythingVerifier,
};

const choice = process.env.BENCH_VERIFIER ?? 'hydra';
const verifier = verifiers[choice];
if (!verifier || !process.send) {
  console.error(`bench/server.ts: unknown BENCH_VERIFIER "${choice}" or no IPC channel`);
  process.exit(2);
}

// The credential scenario's tool, where the run configured a provider for it.
const running = await startServer(process.env, { verifier, ...(process.env.CONNECTIONS_FILE ? { extraTools: [whoamiWithCredential as never] } : {}) });
process.send({ ready: true, url: running.url, metricsUrl: running.metricsUrl });
process.on('message', (msg: { memory?: boolean; stop?: boolean; cpu?: boolean }) => {
  // CPU time of the whole process (all threads), µs: the load runs read it before and after.
  if (msg.cpu) {
    const { user, system } = process.cpuUsage();
    process.send!({ cpu: user + system });
  }
  if (msg.memory) {
    // Full GCs with pauses between: the first may only finalise what the next
    // frees, and V8 hands freed pages back to the OS a little later.
    void (async () => {
      for (let i = 0; i < 3; i++) {
        globalThis.gc?.();
        await sleep(500);
      }
      process.send!({ memory: process.memoryUsage() });
    })();
  }
  if (msg.stop) void running.stop().then(() => process.exit(0));
});
// The parent going away ends us too.
process.on('disconnect', () => void running.stop().then(() => process.exit(0)));
