/**
 * Self time of a V8 CPU profile (.cpuprofile, as `node --cpu-prof` writes it)
 * by function and by source file, and the difference in share of busy time
 * between two profiles: how bench/profileDiff.ts finds where a scenario
 * server's time goes that its baseline twin's does not.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A profile file, or the main thread's (tid 0) in a server's BENCH_CPU_PROF directory. */
function profileFile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const main = readdirSync(path).find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (!main) throw new Error(`${path}: no main-thread profile (CPU.*.<pid>.0.*.cpuprofile)`);
  return join(path, main);
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Self time in µs by function ("name file:line") and by file, with the busy total. */
export function selfTimes(path: string, lastSeconds: number | undefined): { byFunction: Map<string, number>; byFile: Map<string, number>; busy: number; gc: number } {
  const p = JSON.parse(readFileSync(profileFile(path), 'utf8')) as Profile;
  // Sample times, to keep only the last seconds (the load phase, not module loading at start).
  const at: number[] = [];
  let t = 0;
  for (const d of p.timeDeltas) at.push((t += d));
  const from = lastSeconds === undefined ? -Infinity : t - lastSeconds * 1e6;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  let gc = 0;
  p.samples.forEach((id, i) => {
    const f = nodes.get(id)!.callFrame;
    // A sample's time is the delta to the next sample (V8's own convention).
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (at[i]! < from) return;
    if (f.functionName === '(garbage collector)') gc += dt;
    if (IDLE.has(f.functionName)) return;
    busy += dt;
    const file = shortFile(f.url);
    const fn = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
  });
  return { byFunction, byFile, busy, gc };
}

/** Paths shortened to the package or our own source path. */
function shortFile(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.search(/\/(src|bench)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

/** One row of a comparison: shares of each profile's busy time, %, and their difference. */
export interface ShareRow {
  key: string;
  scenario: number;
  baseline: number;
  difference: number;
}

/** Every key of either map as shares of its profile's busy time, largest difference (either sign) first. */
export function shareDiff(a: Map<string, number>, aBusy: number, b: Map<string, number>, bBusy: number): ShareRow[] {
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((key) => {
    const scenario = ((a.get(key) ?? 0) / aBusy) * 100;
    const baseline = ((b.get(key) ?? 0) / bBusy) * 100;
    return { key, scenario, baseline, difference: scenario - baseline };
  });
  return rows.sort((x, y) => Math.abs(y.difference) - Math.abs(x.difference));
}
