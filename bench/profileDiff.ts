/**
 * `npx tsx bench/profileDiff.ts <scenario> <baseline>` (profiles, or servers' profile directories):
 * where a scenario server's time goes that its baseline twin's does not.
 * Profiles come from a bench run with BENCH_CPU_PROF=<dir> (a directory per
 * server, named after it; the main thread's profile is used). Self time is compared as a share of each profile's busy
 * time (idle, GC and program excluded from the denominator), by function and
 * by source file, so the two need not have served the same number of requests.
 */
import { selfTimes, shareDiff } from './profileShares.js';

function print(title: string, rows: ReturnType<typeof shareDiff>, top: number): void {
  console.log(`\n${title} (share of busy time, %; scenario − baseline, scenario, baseline)`);
  for (const r of rows.slice(0, top)) console.log(`${r.difference >= 0 ? '+' : ''}${r.difference.toFixed(2).padStart(6)}  ${r.scenario.toFixed(2).padStart(6)}  ${r.baseline.toFixed(2).padStart(6)}  ${r.key}`);
}

const options = process.argv.slice(2).filter((a) => a.startsWith('--'));
const [scenarioPath, baselinePath, topArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const last = options.find((o) => o.startsWith('--last='));
const lastSeconds = last ? Number(last.slice('--last='.length)) : undefined;
if (!scenarioPath || !baselinePath || (lastSeconds !== undefined && !(lastSeconds > 0))) {
  console.error('usage: tsx bench/profileDiff.ts <scenario> <baseline> [top] [--last=<seconds>: only the profiles\' last seconds]');
  process.exit(2);
}
const s = selfTimes(scenarioPath, lastSeconds);
const b = selfTimes(baselinePath, lastSeconds);
console.log(`busy: scenario ${(s.busy / 1e6).toFixed(2)} s (GC ${(s.gc / 1e6).toFixed(2)} s), baseline ${(b.busy / 1e6).toFixed(2)} s (GC ${(b.gc / 1e6).toFixed(2)} s)`);
print('By file', shareDiff(s.byFile, s.busy, b.byFile, b.busy), Number(topArg ?? 25));
print('By function', shareDiff(s.byFunction, s.busy, b.byFunction, b.busy), Number(topArg ?? 25));
