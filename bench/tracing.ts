/**
 * `npm run bench -- --tracing-only` (issue 30): what OpenTelemetry tracing
 * costs a `tools/call whoami` (2025 stateless, a real JWT checked, cached),
 * as ratios within the same run. Not in the default run (at its 10-minute limit).
 *
 * The tracer is the process's (one global provider), so unlike the other
 * pairs the two sides cannot share a process: each variant is a server process
 * of its own, started from the environment as the entry point starts one
 * (bench/server.ts calls startTracing first):
 *   unset  no OTEL_* variable
 *   off    an endpoint, a sampler, and OTEL_SDK_DISABLED=true
 *   on     OTEL_TRACES_SAMPLER=traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1,
 *          exporting OTLP/HTTP to a local sink (a separate process that
 *          reads and drops every batch, counting them)
 * Pairs: off against unset (should be 1.00×: both never load the SDK) and
 * on against a second off process (each process in one pair only, and each
 * warmed with 8,000 calls first: a process loaded more would be faster by
 * its JIT alone). Two processes of one build differ by a few % by
 * themselves, so there are BENCH_TRACING_PROCESSES sets of the four (built
 * in rotating order), each round using the next set; the sides of a pair
 * are loaded in alternating turns (bench/interleave.ts), which goes first
 * flipping by round. Reported: the median of the rounds' req/s ratios, their
 * spread (lowest to highest), p50/p99 latency ratios, and CPU µs per request
 * from each process's own CPU time over the pair's turns.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureHydraBinary, startHydra } from '../scripts/hydra.js';
import { pinToCpu } from './cpu.js';
import { createClient, mintToken } from './hydraTokens.js';
import { runInterleaved } from './interleave.js';
import { callOnce, type Target } from './load.js';
import { log } from './log.js';
import type { LoadSample } from './results.js';
import { type BenchServer, startBenchServer } from './servers.js';
import type { Settings } from './settings.js';
import { benchServerEnv, type Resources } from './setup.js';
import { median } from './stats.js';

// Two "off" processes, one per pair: every process is loaded in one pair only, so none is warmer than its other side.
const VARIANTS = ['unset', 'off', 'off2', 'on'] as const;
type Variant = (typeof VARIANTS)[number];
const PAIRS: [Variant, Variant][] = [
  ['off', 'unset'],
  ['on', 'off2'],
];
/** A fresh server's cost per call settles after ~8,000 calls (bench/phases.ts): each side gets this many before the rounds. */
const WARM_CALLS = 8000;

interface Side {
  server: BenchServer;
  target: Target;
  sub: string;
}

interface PairRound {
  ratio: number;
  p50Ratio: number;
  p99Ratio: number;
  cpuUs: [number, number];
  samples: [LoadSample, LoadSample];
}

export interface TracingPairResult {
  scenario: Variant;
  baseline: Variant;
  /** Median over the rounds of scenario req/s ÷ baseline req/s, and the lowest and highest round. */
  ratio: number;
  spread: [number, number];
  p50Ratio: number;
  p99Ratio: number;
  /** Median CPU µs per request of each side's process. */
  cpuUs: [number, number];
  rps: [number, number];
  rounds: number[];
}

export async function tracingBench(settings: Settings, own: Resources): Promise<void> {
  const pinned = pinToCpu(process.pid, 0);
  log(pinned ? 'load generator on CPU 0, servers on CPU 1' : 'no CPU pinning');
  const sets = settings.tracingProcesses;

  const binary = await ensureHydraBinary({ log: (l) => log(`hydra build: ${l}`) });
  const nowhere = 'http://127.0.0.1:9';
  const hydra = await startHydra({
    binary,
    dsn: 'memory',
    accessTokenStrategy: 'jwt',
    loginUrl: `${nowhere}/login`,
    consentUrl: `${nowhere}/consent`,
    logoutUrl: `${nowhere}/logout`,
    errorUrl: `${nowhere}/oauth-error`,
    secretsSystem: randomBytes(24).toString('hex'),
    env: { LOG_LEVEL: 'warn', OAUTH2_HASHERS_BCRYPT_COST: '4' },
    log: (l) => own.hydraLog.push(l),
  });
  own.cleanups.push(() => hydra.stop());
  const sink = await startSink();
  own.cleanups.push(() => sink.stop());
  log(`Hydra ${hydra.version} at ${hydra.publicUrl}; OTLP sink at ${sink.url}`);

  const envOf = (name: string, variant: Variant): Promise<Record<string, string>> => {
    const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1', OTEL_SERVICE_NAME: `bench-${name}` };
    return benchServerEnv(own.dir, name, hydra, {
      MCP_STATELESS: 'true',
      INTROSPECTION_CACHE_SECONDS: '60',
      ...(variant === 'unset' ? {} : tracing),
      ...(variant === 'off' || variant === 'off2' ? { OTEL_SDK_DISABLED: 'true' } : {}),
    });
  };
  const servers: Record<Variant, BenchServer>[] = [];
  for (let k = 0; k < sets; k++) {
    const set = {} as Record<Variant, BenchServer>;
    // Build order rotates between the sets: no variant is always the first process started.
    for (let i = 0; i < VARIANTS.length; i++) {
      const variant = VARIANTS[(i + k) % VARIANTS.length]!;
      const name = `tracing-${variant}-${k}`;
      set[variant] = await startBenchServer(name, 'hydra', await envOf(name, variant), pinned ? 1 : undefined);
      own.cleanups.push(() => set[variant].stop());
    }
    servers.push(set);
  }
  const urls = servers.flatMap((set) => VARIANTS.map((v) => set[v].mcpUrl.href));
  const client = await createClient(hydra.adminUrl, urls, 'bench tracing');
  const sides: Record<Variant, Side>[] = [];
  for (const set of servers) {
    const row = {} as Record<Variant, Side>;
    for (const v of VARIANTS) {
      const target: Target = { url: set[v].mcpUrl, token: await mintToken(hydra.publicUrl, client, set[v].mcpUrl.href) };
      await callOnce(target, client.clientId);
      row[v] = { server: set[v], target, sub: client.clientId };
    }
    sides.push(row);
  }
  log(`${sets * VARIANTS.length} server processes up (${sets} sets of ${VARIANTS.join(', ')})`);

  const slices = 2 * Math.max(1, Math.round((settings.seconds * 1000) / settings.sliceMs));
  const run = (a: Side, b: Side, n: number, sliceMs: number, bFirst: boolean) => pairOnce(a, b, { connections: settings.connections, slices: n, sliceMs }, bFirst);
  for (const row of sides) {
    for (const [a, b] of PAIRS) {
      const served = [0, 0];
      for (const started = Date.now(); Math.min(...served) < WARM_CALLS && Date.now() - started < 60_000; ) {
        const warm = await run(row[a], row[b], Math.round((settings.warmSeconds * 1000) / settings.warmSliceMs), settings.warmSliceMs, false);
        served[0] = served[0]! + warm.samples[0].requests;
        served[1] = served[1]! + warm.samples[1].requests;
      }
      log(`warmed ${row[a].server.name} / ${row[b].server.name}: ${served.join(' / ')} calls`);
    }
  }
  const exportedBefore = await sink.count();

  const rounds = new Map<string, PairRound[]>();
  for (let r = 0; r < settings.rounds; r++) {
    const row = sides[r % sides.length]!;
    for (const [a, b] of r % 2 ? [...PAIRS].reverse() : PAIRS) {
      await run(row[a], row[b], 2, 150, false);
      const round = await run(row[a], row[b], slices, settings.sliceMs, r % 2 === 1);
      const key = `${a}/${b}`;
      rounds.set(key, [...(rounds.get(key) ?? []), round]);
      const [sa, sb] = round.samples;
      log(`round ${r + 1}/${settings.rounds} set ${r % sides.length} ${a} vs ${b}: ${round.ratio.toFixed(3)}× (${sa.rps.toFixed(0)} | ${sb.rps.toFixed(0)} req/s, p99 ${sa.p99.toFixed(2)} | ${sb.p99.toFixed(2)} ms, ${round.cpuUs[0].toFixed(0)} | ${round.cpuUs[1].toFixed(0)} µs CPU/req)`);
    }
  }
  const exported = await sink.count();
  const results = PAIRS.map(([a, b]): TracingPairResult => {
    const mine = rounds.get(`${a}/${b}`)!;
    const ratios = mine.map((x) => x.ratio);
    return {
      scenario: a,
      baseline: b,
      ratio: median(ratios),
      spread: [Math.min(...ratios), Math.max(...ratios)],
      p50Ratio: median(mine.map((x) => x.p50Ratio)),
      p99Ratio: median(mine.map((x) => x.p99Ratio)),
      cpuUs: [median(mine.map((x) => x.cpuUs[0])), median(mine.map((x) => x.cpuUs[1]))],
      rps: [median(mine.map((x) => x.samples[0].rps)), median(mine.map((x) => x.samples[1].rps))],
      rounds: ratios,
    };
  });
  if (exported.requests - exportedBefore.requests === 0) throw new Error('the "on" servers exported nothing to the sink during the rounds: tracing was not on');
  const markdown = render(settings, results, exported, sets);
  await mkdir(settings.resultsDir, { recursive: true });
  const files = [join(settings.resultsDir, 'tracing.md'), join(settings.resultsDir, 'tracing.json')];
  await writeFile(files[0]!, markdown);
  await writeFile(files[1]!, `${JSON.stringify({ date: new Date().toISOString(), sets, rounds: settings.rounds, connections: settings.connections, seconds: settings.seconds, sliceMs: settings.sliceMs, pairs: results, exported }, null, 2)}\n`);
  console.log(markdown);
  log(`written: ${files.join(', ')}`);
}

/** One interleaved run of a pair; CPU per request from each side's own process over the whole run. */
async function pairOnce(a: Side, b: Side, opts: { connections: number; slices: number; sliceMs: number }, bFirst: boolean): Promise<PairRound> {
  const cpu0 = [await a.server.cpuMicros(), await b.server.cpuMicros()];
  const none = async () => 0;
  const samples: [LoadSample, LoadSample] = bFirst
    ? ((s) => [s[1], s[0]] as [LoadSample, LoadSample])(await runInterleaved([b.target, a.target], { ...opts, cpuMicros: none }))
    : await runInterleaved([a.target, b.target], { ...opts, cpuMicros: none });
  const cpu1 = [await a.server.cpuMicros(), await b.server.cpuMicros()];
  for (const side of [a, b]) await callOnce(side.target, side.sub);
  const [sa, sb] = samples;
  return {
    ratio: sa.rps / sb.rps,
    p50Ratio: sa.p50 / sb.p50,
    p99Ratio: sa.p99 / sb.p99,
    cpuUs: [(cpu1[0]! - cpu0[0]!) / Math.max(1, sa.requests), (cpu1[1]! - cpu0[1]!) / Math.max(1, sb.requests)],
    samples,
  };
}

function render(settings: Settings, results: TracingPairResult[], exported: { requests: number; bytes: number }, sets: number): string {
  const row = (r: TracingPairResult) =>
    `| ${r.scenario} vs ${r.baseline.replace('off2', 'off')} | **${r.ratio.toFixed(3)}×** | ${r.spread[0].toFixed(3)}–${r.spread[1].toFixed(3)}× | ${r.rps[0].toFixed(0)} / ${r.rps[1].toFixed(0)} | ${r.p50Ratio.toFixed(3)}× | ${r.p99Ratio.toFixed(3)}× | ${r.cpuUs[0].toFixed(0)} / ${r.cpuUs[1].toFixed(0)} |`;
  return [
    '# Tracing cost (`npm run bench -- --tracing-only`)',
    '',
    `tools/call whoami, 2025 stateless, JWT (checked, cached); ${settings.connections} connections; ${settings.rounds} rounds of ${settings.seconds} s per side in ${settings.sliceMs} ms turns, over ${sets} sets of server processes.`,
    '"on": traceidratio 0.1, OTLP/HTTP protobuf to a local sink; "off": the same with OTEL_SDK_DISABLED=true; "unset": no OTEL_* variable.',
    '',
    '| pair | req/s ratio (median) | spread (rounds) | req/s (median) | p50 ratio | p99 ratio | CPU µs/req |',
    '|---|---|---|---|---|---|---|',
    ...results.map(row),
    '',
    `The sink received ${exported.requests} export requests (${(exported.bytes / 1024).toFixed(0)} KiB), all from the "on" servers.`,
    '',
  ].join('\n');
}

/** An OTLP/HTTP endpoint in a process of its own that answers every export with 200 and counts them (GET /count). */
async function startSink(): Promise<{ url: string; count(): Promise<{ requests: number; bytes: number }>; stop(): Promise<void> }> {
  const code = `
    let requests = 0, bytes = 0;
    require('node:http').createServer((req, res) => {
      if (req.method === 'GET') return res.end(JSON.stringify({ requests, bytes }));
      req.on('data', (c) => (bytes += c.length));
      req.on('end', () => { requests++; res.writeHead(200, { 'content-type': req.headers['content-type'] || 'application/x-protobuf' }).end(); });
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`the OTLP sink exited (${c})`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    count: async () => (await (await fetch(`${url}/count`)).json()) as { requests: number; bytes: number },
    stop: async () => {
      child.kill();
    },
  };
}
