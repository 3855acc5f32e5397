import { Agent, request } from 'node:http';
import { callWhoami, headersFor, type Target } from './load.js';
import type { LoadSample } from './results.js';
import { quantile } from './stats.js';

/**
 * Load two servers of ONE process in turns of `sliceMs`, over the same
 * keep-alive connections throughout: A, B, A, B, … for `slices` turns.
 * Whatever the machine's host does over seconds (these VMs' speed moves by
 * tens of percent within a minute) reaches both sides alike, and the two
 * sides' samples are sums over their own turns. Each turn ends when its last
 * request is answered; the process's CPU time is read between turns.
 * Written here, not autocannon: autocannon cannot switch targets every few
 * hundred ms over connections it keeps open.
 */
export async function runInterleaved(
  targets: readonly [Target, Target],
  { connections, sliceMs, slices, cpuMicros }: { connections: number; sliceMs: number; slices: number; cpuMicros: () => Promise<number> },
): Promise<[LoadSample, LoadSample]> {
  const agents = targets.map(() => new Agent({ keepAlive: true, maxSockets: connections }));
  const sides = targets.map(() => ({ latencies: [] as number[], ms: 0, cpu: 0, errors: 0 }));
  try {
    let cpu = await cpuMicros();
    for (let turn = 0; turn < slices; turn++) {
      const i = turn % 2;
      const t = targets[i]!;
      const side = sides[i]!;
      const started = performance.now();
      const deadline = started + sliceMs;
      const loop = async () => {
        while (performance.now() < deadline) {
          const sent = performance.now();
          const status = await post(t, agents[i]!);
          if (status >= 200 && status < 300) side.latencies.push(performance.now() - sent);
          else side.errors++;
        }
      };
      await Promise.all(Array.from({ length: connections }, loop));
      side.ms += performance.now() - started;
      const now = await cpuMicros();
      side.cpu += now - cpu;
      cpu = now;
    }
  } finally {
    for (const a of agents) a.destroy();
  }
  return sides.map((s): LoadSample => {
    const sorted = [...s.latencies].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length ? quantile(sorted, q) : Number.NaN);
    return { rps: (sorted.length / s.ms) * 1000, p50: at(0.5), p99: at(0.99), requests: sorted.length, errors: s.errors, cpuUs: s.cpu / Math.max(1, sorted.length) };
  }) as [LoadSample, LoadSample];
}

/** One `tools/call` on a kept connection; resolves with the status once the whole answer is read (a failed request counts as status 0). */
function post(t: Target, agent: Agent): Promise<number> {
  const body = callWhoami(t);
  return new Promise((resolve) => {
    const req = request(t.url, { method: 'POST', agent, headers: { ...headersFor(t), 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}
