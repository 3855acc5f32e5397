/**
 * One server under benchmark, in its own process (so the load generator and
 * the server do not share an event loop). Started by bench/setup.ts with an
 * IPC channel and --expose-gc; told which verifier to compose by
 * BENCH_VERIFIER. Reports { ready, url, metricsUrl }, answers { memory } with
 * process.memoryUsage() taken after a full GC, and { rebuilds } with the ms of
 * every session rebuilt so far (BENCH_SESSION_REBUILDS=on).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { whoamiWithCredential } from './credentialTool.js';
import { BASELINE_SUB, fixedPrincipalVerifier, SESSIONS_SUB } from './fixedPrincipal.js';
import { memorySessionsStore } from './memorySessionsStore.js';
import { switchSessionsStore, switchStreamEvents } from './switchSessionsStore.js';
import { StreamEvents } from '../src/mcp/streamEvents.js';
import { inMemoryStreamEventsStore } from '../src/store/mcpStreamEventsStore.js';
import { createLogger } from '../src/log/logger.js';
import { switchVerifier } from './switchVerifier.js';
import { introspectEverythingVerifier } from './introspectEverything.js';
import { hydraTokenVerifier, startServer, type StartOptions } from '../src/main.js';
import { startTracing } from '../src/tracing/startTracing.js';
import { mcpSessionsStore } from '../src/store/mcpSessionsStore.js';

const verifiers: Record<string, StartOptions['verifier']> = {
  hydra: (parts) => hydraTokenVerifier(parts),
  // The quick memory run: the same verifier with a smaller cache bound to cross.
  'hydra-small-cache': (parts) => hydraTokenVerifier(parts, { cacheSize: Number(process.env.BENCH_CACHE_BOUND) }),
  fixed: fixedPrincipalVerifier,
  // The shared-sessions scenario's side: free like the baseline's, another person.
  'fixed-sessions': (parts) => fixedPrincipalVerifier(parts, SESSIONS_SUB),
  'introspect-everything': introspectEverythingVerifier,
};

// "switch:<name>": <name>'s check for scenario tokens, the fixed principal for BASELINE_TOKEN (bench/switchVerifier.ts).
const choice = process.env.BENCH_VERIFIER ?? 'hydra';
const named = (name: string) => (name.startsWith('switch:') ? ((v) => v && switchVerifier(v))(verifiers[name.slice('switch:'.length)]) : verifiers[name]);
const verifier = named(choice);
if (!verifier || !process.send) {
  console.error(`bench/server.ts: unknown BENCH_VERIFIER "${choice}" or no IPC channel`);
  process.exit(2);
}

// BENCH_SESSIONS_STORE=switch: the baseline person's sessions in memory, everyone else's in the shared
// table (bench/switchSessionsStore.ts). BENCH_SESSION_REBUILDS=on: each rebuild's ms kept for { rebuilds }.
const rebuilds: number[] = [];
const sessionOptions = (env: Record<string, string | undefined>): StartOptions['sharedSessions'] => {
  const switched = env.BENCH_SESSIONS_STORE === 'switch';
  const timed = env.BENCH_SESSION_REBUILDS === 'on';
  if (!switched && !timed) return undefined;
  return (db) => ({
    ...(switched
      ? {
          store: switchSessionsStore(mcpSessionsStore(db), memorySessionsStore(), BASELINE_SUB),
          // The stream log the app keeps on SQLite (src/app/services.ts): this process's memory.
          streamEvents: switchStreamEvents(new StreamEvents({ store: inMemoryStreamEventsStore(), log: createLogger('silent') }), BASELINE_SUB),
        }
      : {}),
    ...(timed ? { onRebuilt: (ms: number) => void rebuilds.push(ms) } : {}),
  });
};

// The credential scenario's tool, where the run configured a provider for it.
const start = (env: Record<string, string | undefined>, v: StartOptions['verifier']) =>
  startServer(env, { verifier: v, ...(env.CONNECTIONS_FILE ? { extraTools: [whoamiWithCredential as never] } : {}), sharedSessions: sessionOptions(env) });
// BENCH_TWIN = {"verifier", "env"}: a second server in this process (its own port and database), the
// baseline of a scenario that differs in configuration (audit-limits). Two servers of one build still
// differ by up to ±5 % by themselves, so the bench spreads such pairs (BENCH_TWIN_PROCESSES) over several processes.
const twinSpec = process.env.BENCH_TWIN ? (JSON.parse(process.env.BENCH_TWIN) as { verifier: string; env: Record<string, string> }) : undefined;
const twinVerifier = twinSpec && named(twinSpec.verifier);
if (twinSpec && !twinVerifier) {
  console.error(`bench/server.ts: unknown twin verifier "${twinSpec.verifier}"`);
  process.exit(2);
}
// Which of the two is built first alternates between those processes (BENCH_TWIN_FIRST).
const twinFirst = process.env.BENCH_TWIN_FIRST === 'true';
// As the entry point does (src/main.ts): OTEL_* starts tracing for the whole process; without them nothing is loaded.
const tracing = await startTracing(process.env);
const twinRunning = twinSpec && twinFirst ? await start({ ...process.env, BENCH_TWIN: undefined, ...twinSpec.env }, twinVerifier) : undefined;
const running = await start(process.env, verifier);
const twin = twinRunning ?? (twinSpec ? await start({ ...process.env, BENCH_TWIN: undefined, ...twinSpec.env }, twinVerifier) : undefined);
process.send({ ready: true, url: running.url, metricsUrl: running.metricsUrl, ...(twin ? { twin: { url: twin.url, metricsUrl: twin.metricsUrl } } : {}) });
process.on('message', (msg: { memory?: boolean; stop?: boolean; cpu?: boolean; rebuilds?: boolean }) => {
  if (msg.rebuilds) process.send!({ rebuilds });
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
  if (msg.stop) void Promise.all([running.stop(), twin?.stop()]).then(() => tracing.shutdown()).then(() => process.exit(0));
});
// The parent going away ends us too.
process.on('disconnect', () => void Promise.all([running.stop(), twin?.stop()]).then(() => process.exit(0)));
