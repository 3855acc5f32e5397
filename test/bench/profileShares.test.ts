import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Profile, selfTimes, shareDiff } from '../../bench/profileShares.js';

const frame = (id: number, functionName: string, url = '', lineNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber } });

/**
 * Samples are charged the time to the next sample (V8's convention): here
 * every sample but the first lasts 1 ms. Node 2 (idle) and 5 (GC) are not busy.
 */
const profile: Profile = {
  nodes: [
    frame(1, '(root)'),
    frame(2, '(idle)'),
    frame(3, 'verifyAccessToken', 'file:///work/main/src/auth/tokenVerifier.ts', 10),
    frame(4, 'parse', 'file:///work/main/node_modules/zod/v4/core/schemas.js', 0),
    frame(5, '(garbage collector)'),
  ],
  // At 0, 1, … 6 ms: idle, verifier, verifier, zod, GC, zod, idle (the last sample has no next, so no time).
  samples: [2, 3, 3, 4, 5, 4, 2],
  timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000],
};

describe('bench CPU profile shares', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-profile-'));
    await writeFile(join(dir, 'a.cpuprofile'), JSON.stringify(profile));
    // A server's BENCH_CPU_PROF directory: the main thread (tid 0) is read, not a worker's.
    await mkdir(join(dir, 'server'));
    await writeFile(join(dir, 'server', 'CPU.20261126.040633.11070.0.001.cpuprofile'), JSON.stringify(profile));
    await writeFile(join(dir, 'server', 'CPU.20261126.040636.11070.1.002.cpuprofile'), JSON.stringify({ ...profile, samples: [2, 2, 2, 2, 2, 2, 2] }));
    await mkdir(join(dir, 'workers-only'));
    await writeFile(join(dir, 'workers-only', 'CPU.20261126.040636.11070.1.002.cpuprofile'), JSON.stringify(profile));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('charges each sample the time to the next, by function and by short file name, leaving idle and GC out of busy time', () => {
    const t = selfTimes(join(dir, 'a.cpuprofile'), undefined);
    expect(t.busy).toBe(4000);
    expect(t.gc).toBe(1000);
    expect(Object.fromEntries(t.byFile)).toEqual({ 'src/auth/tokenVerifier.ts': 2000, 'zod/v4/core/schemas.js': 2000 });
    expect(t.byFunction.get('verifyAccessToken src/auth/tokenVerifier.ts:11')).toBe(2000);
  });

  it('keeps only the last seconds when asked (the load, not module loading at start)', () => {
    // The last 3.5 ms of a 6 ms profile: samples taken from 2.5 ms on (zod, GC, zod, idle).
    const t = selfTimes(join(dir, 'a.cpuprofile'), 0.0035);
    expect(t.busy).toBe(2000);
    expect(Object.fromEntries(t.byFile)).toEqual({ 'zod/v4/core/schemas.js': 2000 });
  });

  it("reads the main thread's profile from a server's directory, and names a directory without one", () => {
    expect(selfTimes(join(dir, 'server'), undefined).busy).toBe(4000);
    expect(() => selfTimes(join(dir, 'workers-only'), undefined)).toThrow(/workers-only: no main-thread profile/);
  });

  it('compares shares of busy time, largest difference first, keys of either side included', () => {
    const rows = shareDiff(new Map([['auth', 30], ['app', 70]]), 100, new Map([['app', 180], ['http', 20]]), 200);
    expect(rows.map((r) => r.key)).toEqual(['auth', 'app', 'http']);
    expect(rows[0]).toEqual({ key: 'auth', scenario: 30, baseline: 0, difference: 30 });
    expect(rows[1]).toEqual({ key: 'app', scenario: 70, baseline: 90, difference: -20 });
    expect(rows[2]).toEqual({ key: 'http', scenario: 0, baseline: 10, difference: -10 });
  });
});
