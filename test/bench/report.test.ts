import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aaSpread, renderChart, renderMarkdown, targets, writeReport } from '../../bench/report.js';
import type { BenchResults, LoadResult, Mode, Scenario } from '../../bench/results.js';

const sample = (rps: number, p50: number, p99: number) => ({ rps, p50, p99, requests: rps * 4, errors: 0 });
const row = (mode: Mode, scenario: Scenario, rps: number, ratio: number, p99Added: number, errors = 0): LoadResult => ({
  mode,
  scenario,
  rps,
  p50: 2,
  p99: 5 + p99Added,
  ratio: { rps: ratio, p50: 1 / ratio, p99: (5 + p99Added) / 5 },
  p99AddedMs: p99Added,
  rounds: [{ ...sample(rps, 2, 5 + p99Added), errors }],
  pairedBaseline: [],
});

/**
 * A run where the stateless JWT path meets every target and the stateful one
 * misses the throughput target; the 2026-07-28 path meets both of its ratios
 * and, like the real run, has no introspect-everything contrast.
 */
function fixture(): BenchResults {
  return {
    date: '2026-11-22T15:00:00.000Z',
    machine: { cpu: 'AMD <EPYC> & co', cores: 2, memoryGiB: 24, node: 'v20.20.0', os: 'linux 6.1', hydra: 'v2.3.0' },
    settings: { connections: 10, durationSeconds: 4, rounds: 5, registeredClients: 1000, tool: 'whoami', cpuPlacement: 'no CPU pinning' },
    load: [
      row('stateless', 'baseline', 10_000, 1, 0),
      row('stateless', 'jwt', 9_500, 0.95, 0.31),
      row('stateless', 'opaque-cached', 9_300, 0.93, 0.4),
      row('stateless', 'opaque-introspect', 4_000, 0.4, 3),
      row('stateless', 'introspect-everything', 100, 0.01, 400, 2),
      row('stateful', 'baseline', 20_000, 1, 0),
      row('stateful', 'jwt', 18_000, 0.9, 1.5),
      row('stateful', 'opaque-cached', 19_000, 0.95, 0.2),
      row('stateful', 'opaque-introspect', 8_000, 0.4, 3),
      row('stateful', 'introspect-everything', 1_000, 0.05, 300),
      row('stateless-2026', 'baseline', 11_000, 1, 0),
      row('stateless-2026', 'jwt', 10_560, 0.96, 0.2),
      row('stateless-2026', 'opaque-cached', 10_450, 0.95, 0.3),
      row('stateless-2026', 'opaque-introspect', 4_400, 0.4, 3),
    ],
    verifier: [
      { check: 'JWT, verified result cached', microseconds: 4 },
      { check: 'opaque, introspected at Hydra', microseconds: 2000 },
    ],
    memory: {
      tokens: [
        {
          kind: 'jwt',
          bound: 10_000,
          points: [
            { label: 'before any token', rssMiB: 100, heapUsedMiB: 24, entries: 0 },
            { label: '10,000 distinct tokens', rssMiB: 200, heapUsedMiB: 34, entries: 10_000 },
            { label: '20,000 distinct tokens', rssMiB: 205, heapUsedMiB: 34.5, entries: 10_000 },
          ],
        },
        {
          kind: 'opaque',
          bound: 10_000,
          points: [
            { label: 'before any token', rssMiB: 100, heapUsedMiB: 24, entries: 0 },
            { label: '10,000 distinct tokens', rssMiB: 200, heapUsedMiB: 36, entries: 10_000 },
            { label: '20,000 distinct tokens', rssMiB: 240, heapUsedMiB: 40, entries: 10_000 },
          ],
        },
      ],
      sessions: {
        bound: 1000,
        refused: 200,
        points: [
          { label: 'no sessions', rssMiB: 100, heapUsedMiB: 24, entries: 0 },
          { label: '1,000 sessions', rssMiB: 200, heapUsedMiB: 74, entries: 1000 },
          { label: 'then 200 more attempts', rssMiB: 200, heapUsedMiB: 74, entries: 1000 },
        ],
      },
    },
    flow: { runs: 20, medianMs: 150, p95Ms: 190, steps: [{ name: 'discovery + registration', medianMs: 16 }] },
  };
}

describe('bench report', () => {
  it('prints each scenario with its ratio to the baseline and the p99 it adds', () => {
    const md = renderMarkdown(fixture());
    expect(md).toContain('| JWT, verified locally | 9,500 | 0.95× | 2.00 | 1.05× | 5.31 | 1.06× | +0.31 |');
    expect(md).toContain('introspect + list every client (1,000 clients) (errors: 2)');
    expect(md).toContain('AMD <EPYC> & co');
    // One table per mode, in order, under its own title.
    const titles = ['**2025-era stateless Streamable HTTP**', '**2025-era stateful Streamable HTTP (sessions)**', '**2026-07-28 (stateless, no initialize)**'];
    const at = titles.map((t) => md.indexOf(t));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(md.slice(at[2]!)).toContain('| JWT, verified locally | 10,560 | 0.96× |');
  });

  it('judges every target, naming the shortfall of a missed one', () => {
    const t = targets(fixture());
    const byName = (part: string) => t.filter((x) => x.name.includes(part));
    expect(byName('stateless: JWT throughput')[0]).toMatchObject({ met: true, measured: '0.95×' });
    expect(byName('stateful: JWT throughput')[0]).toMatchObject({ met: false, short: '0.05×' });
    expect(byName('stateful: JWT p99')[0]).toMatchObject({ met: false, measured: '+1.50 ms' });
    expect(byName('stateless: ≥ 20×')[0]).toMatchObject({ met: true, measured: '93×' });
    expect(byName('stateful: ≥ 20×')[0]).toMatchObject({ met: false, measured: '19×' });
    // Warm introspection: 0.95×, like JWT (issue 13), judged per mode against its own baseline.
    expect(byName('stateless: warm introspection cache ≥ 0.95×')[0]).toMatchObject({ met: false, measured: '0.93×', short: '0.02×' });
    expect(byName('stateful: warm introspection cache ≥ 0.95×')[0]).toMatchObject({ met: true, measured: '0.95×' });
    expect(byName('stateless-2026: JWT throughput ≥ 0.95×')[0]).toMatchObject({ met: true, measured: '0.96×' });
    expect(byName('stateless-2026: warm introspection cache ≥ 0.95×')[0]).toMatchObject({ met: true, measured: '0.95×' });
    expect(byName('stateless-2026: ≥ 20×')).toHaveLength(0);
    expect(byName('jwt tokens: RSS flat')[0]).toMatchObject({ met: true, measured: '+2.5 %' });
    expect(byName('opaque tokens: RSS flat')[0]).toMatchObject({ met: false, measured: '+20.0 %' });
    expect(renderMarkdown(fixture())).toContain('| stateful: JWT throughput ≥ 0.95× baseline | 0.90× | **no** (short by 0.05×) |');
  });

  it('adds server CPU per request and capacity (baseline µs ÷ scenario µs) when the run measured them', () => {
    const r = fixture();
    // Results from before CPU was measured have no such columns or targets.
    expect(renderMarkdown(r)).not.toContain('capacity × baseline');
    expect(targets(r).some((t) => t.name.includes('capacity'))).toBe(false);
    for (const l of r.load.filter((x) => x.mode === 'stateless')) {
      const baseUs = 400;
      const us = l.scenario === 'baseline' ? baseUs : l.scenario === 'jwt' ? 408 : 440;
      l.cpuUs = us;
      l.ratio.cpu = baseUs / us;
      l.rounds = [{ ...l.rounds[0]!, cpuUs: us }, { ...l.rounds[0]!, cpuUs: us * 1.02 }];
      l.pairedBaseline = l.scenario === 'baseline' ? [] : [{ ...l.rounds[0]!, cpuUs: baseUs }, { ...l.rounds[0]!, cpuUs: baseUs }];
    }
    const md = renderMarkdown(r);
    expect(md).toContain('server CPU µs/req | capacity × baseline |');
    expect(md).toMatch(/\| JWT, verified locally \| 9,500 \|.*\| 408 \| 0\.98× \(0\.96–0\.98\) \|/);
    const t = targets(r);
    expect(t.find((x) => x.name === 'stateless: JWT server CPU per request ≥ 0.95× baseline capacity')).toMatchObject({ met: true, measured: '0.98×' });
    expect(t.find((x) => x.name === 'stateless: warm introspection server CPU per request ≥ 0.95× baseline capacity')).toMatchObject({ met: false, measured: '0.91×', short: '0.04×' });
    // Modes without the measure get no capacity column.
    expect(md.slice(md.indexOf('**2025-era stateful'))).not.toContain('capacity × baseline |\n');
  });

  it('sets the check alone against the time of a whole baseline request', () => {
    const md = renderMarkdown(fixture());
    // Stateful baseline: 20,000 req/s, so 50 µs a request.
    expect(md).toContain('| JWT, verified result cached | 4.0 | 8.0 % |');
    expect(md).toContain('| opaque, introspected at Hydra | 2000.0 | 4000.0 % |');
  });

  it('gives the cost of one session from the session points', () => {
    expect(renderMarkdown(fixture())).toContain('Sessions beyond the bound refused: 200. One open session costs about 51 KiB of heap (102 KiB of RSS).');
  });

  it('draws a bar per scenario with its ratio, escaping text', () => {
    const r = fixture();
    r.settings.tool = 'x';
    const svg = renderChart(r);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect x=/g)).toHaveLength(14);
    expect(svg).toContain('>2026-07-28 (stateless, no initialize)</text>');
    for (const label of ['0.95×', '0.93×', '0.40×', '0.01×', '0.90×', '0.05×']) expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('introspect + list every client (1,000 clients)');
    expect(svg).not.toMatch(/<text[^>]*>[^<]*&(?!amp;|lt;|gt;|quot;)/);
  });

  it('says how pairs were made: one after the other (older results) or each scenario with its twin at the same time', () => {
    const r = fixture();
    expect(renderMarkdown(r)).toContain('Each scenario run next to a baseline run, the order flipping each round.');
    expect(renderMarkdown(r)).not.toContain('twin');
    r.settings.pairing = 'concurrent';
    r.settings.loadAverage = [0.42, 7.5];
    const md = renderMarkdown(r);
    expect(md).toContain('machine load average 0.4–7.5 during the load runs (on 2 cores');
    expect(md).toContain('the two are loaded at the same time, sharing one CPU');
    expect(md).toContain('against its twin in the same round');
    expect(md).not.toContain('Each scenario run next to a baseline run');
    // Same process, in turns (this method): the turn length, the warm-up and why one process.
    r.settings.pairing = 'same-process';
    r.settings.sliceMs = 250;
    r.settings.warmSeconds = 8;
    const same = renderMarkdown(r);
    expect(same).toContain('in turns of 250 ms');
    expect(same).toContain('ONE server in one process whose verifier switches on the token');
    expect(same).toContain('After 8 s of unmeasured turns per pair');
    expect(same).not.toContain('the two are loaded at the same time');
  });

  it('renders an A/A run as the spread of its ratios instead of judging targets', () => {
    const r = fixture();
    r.settings.aa = true;
    // Two rounds of the stateless JWT pair: 0.97× and 1.02× its twin.
    const jwt = r.load.find((l) => l.mode === 'stateless' && l.scenario === 'jwt')!;
    jwt.rounds = [sample(970, 2, 5), sample(1020, 2, 5)];
    jwt.pairedBaseline = [sample(1000, 2, 5), sample(1000, 2, 5)];
    for (const l of r.load.filter((x) => x.scenario !== 'baseline' && x !== jwt)) l.pairedBaseline = l.rounds.map((x) => sample(x.rps / l.ratio.rps, 2, 5));
    const spread = aaSpread(r);
    expect(spread.medians).toEqual([0.01, 0.96]);
    expect(spread.rounds[0]).toBeCloseTo(0.01, 10);
    expect(spread.rounds[1]).toBeCloseTo(1.02, 10);
    const md = renderMarkdown(r);
    expect(md).toContain('**A/A run**');
    expect(md).toContain('| median throughput ratio of a pair | 0.01× | 0.96× |');
    expect(md).toContain("| one round's throughput ratio | 0.01× | 1.02× |");
    expect(md).not.toContain('**Targets**');
  });

  it('renders a quick run (load only: no memory, flow, check alone or pagination)', () => {
    const r = fixture();
    r.settings.quick = true;
    r.verifier = [];
    delete r.memory;
    delete r.flow;
    const md = renderMarkdown(r);
    expect(md).toContain('5 rounds (quick run: load only)');
    expect(md).toContain('**Targets**');
    for (const absent of ['**Memory**', '**OAuth flow**', '**The check alone**', 'RSS flat']) expect(md).not.toContain(absent);
    expect(targets(r).some((t) => t.name.includes('RSS'))).toBe(false);
  });

  it('judges the audit trail + limits pair against its own twin at 0.97×, throughput and capacity, with the per-round range', () => {
    const r = fixture();
    expect(targets(r).some((t) => t.name.includes('audit trail'))).toBe(false);
    const audit = row('stateless', 'audit-limits', 9_700, 0.972, 0.1);
    audit.rounds = [sample(9_600, 2, 5), sample(9_800, 2, 5), sample(9_700, 2, 5)].map((x, i) => ({ ...x, cpuUs: [410, 420, 415][i] }));
    audit.pairedBaseline = [sample(10_000, 2, 5), sample(9_900, 2, 5), sample(9_950, 2, 5)].map((x) => ({ ...x, cpuUs: 400 }));
    audit.cpuUs = 415;
    audit.ratio.cpu = 400 / 415;
    r.load.push(audit);
    const t = targets(r);
    expect(t.find((x) => x.name === 'stateless: audit trail + fair-use limits throughput ≥ 0.97× both off')).toMatchObject({ met: true, measured: '0.97×' });
    expect(t.find((x) => x.name === 'stateless: audit trail + fair-use limits server CPU per request ≥ 0.97× both-off capacity')).toMatchObject({ met: false, measured: '0.96×', short: '0.01×' });
    const md = renderMarkdown(r);
    // Its row sits last in the stateless table, with its range of per-round ratios to its twin.
    const stateless = md.slice(md.indexOf('**2025-era stateless'), md.indexOf('**2025-era stateful'));
    expect(stateless).toContain('| JWT, audit trail + fair-use limits on (× its twin: JWT, both off) | 9,700 | 0.97× (0.96–0.99) |');
    expect(md).toContain('| stateless: audit trail + fair-use limits server CPU per request ≥ 0.97× both-off capacity | 0.96× | **no** (short by 0.01×) |');
    audit.ratio.rps = 0.95;
    expect(targets(r).find((x) => x.name.startsWith('stateless: audit trail + fair-use limits throughput'))).toMatchObject({ met: false, short: '0.02×' });
    expect(renderChart(r).match(/<rect x=/g)).toHaveLength(15);
    // The method says whose twin it is, and which of the two a diagnostic run turned on.
    r.settings.pairing = 'concurrent';
    expect(renderMarkdown(r)).toContain("The audit-limits row's twin is the same JWT server with the audit trail and fair-use limits off");
    expect(renderMarkdown(r)).not.toContain('BENCH_AUDIT_LIMITS');
    r.settings.auditLimits = 'limits';
    expect(renderMarkdown(r)).toContain('**In this run the scenario had only the fair-use limits on** (BENCH_AUDIT_LIMITS=limits).');
  });

  it('judges the shared session table against sessions in memory at 0.95× (issue 29), and reports the rebuilds on another replica', () => {
    const r = fixture();
    expect(targets(r).some((t) => t.name.includes('shared table'))).toBe(false);
    expect(renderMarkdown(r)).not.toContain("**A session's next request on another replica**");
    const sessions = row('stateful', 'shared-sessions', 19_000, 0.96, 0.2);
    sessions.rounds = [sample(19_000, 2, 5), sample(18_500, 2, 5)];
    sessions.pairedBaseline = [sample(20_000, 2, 5), sample(19_000, 2, 5)];
    r.load.push(sessions);
    expect(targets(r).find((x) => x.name === 'stateful: sessions in the shared table throughput ≥ 0.95× in memory only')).toMatchObject({ met: true, measured: '0.96×' });
    const lat = (p50: number, p99: number) => ({ p50, p95: p99 - 1, p99, max: p99 + 1, n: 200 });
    r.sessionRebuild = { sessions: 200, database: 'one SQLite file, WAL', rebuild: lat(1.8, 11.5), firstRequest: lat(6.3, 29.2), heldRequest: lat(3.2, 30.6), added: lat(2.4, 21.3) };
    const md = renderMarkdown(r);
    // Last in the stateful table, with its per-round range; its method named; the rebuilds' table.
    const stateful = md.slice(md.indexOf('**2025-era stateful'), md.indexOf('**2026-07-28'));
    expect(stateful).toContain('| sessions in the shared table (× its twin: sessions in memory only; both fixed principal) | 19,000 | 0.96× (0.95–0.97) |');
    r.settings.pairing = 'same-process';
    expect(renderMarkdown(r)).toContain('The shared-sessions row (issue 29, 2 rounds) is one stateful server');
    expect(md).toContain("**A session's next request on another replica** (issue 29): rebuilding it from its row takes 1.80 ms (p99 11.50 ms)");
    expect(md).toContain('| rebuild, on the second process | 1.80 | 10.50 | 11.50 | 12.50 |');
    expect(md).toContain('| added: first − next, per session | 2.40 | 20.30 | 21.30 | 22.30 |');
  });

  it('reports memory under the flood and judges it flat from middle to end within 10 %', () => {
    const r = fixture();
    expect(renderMarkdown(r)).not.toContain('**Memory under a flood**');
    const pt = (label: string, rssMiB: number, heapUsedMiB: number, entries: number) => ({ label, rssMiB, heapUsedMiB, entries });
    r.flood = {
      seconds: 15,
      connections: 10,
      ok: 200,
      limited: 89_800,
      other: 0,
      audit: { written: 60_000, dropped: 30_000, failed: 0 },
      points: [pt('before the flood (idle)', 100, 20, 0), pt('flood, 2 s in', 140, 30, 8_000), pt('flood, 7 s in (middle)', 150, 32, 30_000), pt('flood, 13 s in (end)', 156, 32.5, 55_000)],
    };
    const md = renderMarkdown(r);
    expect(md).toContain('**Memory under a flood** (audit trail on, default fair-use limits; one token, 10 connections, 15 s;');
    expect(md).toContain('| flood, 7 s in (middle) | 150.0 | 32.0 | 30,000 |');
    expect(md).toContain('Answers: 90,000 (6,000/s): 200 200, 89,800 429, 0 other. Audit records over the flood: 60,000 written, 30,000 dropped at the full queue, 0 lost to failed writes. Middle to end: RSS +4.00 %, heap +1.56 %.');
    const flat = () => targets(r).find((x) => x.name.startsWith('audit + limits flood: RSS flat'));
    expect(flat()).toMatchObject({ name: 'audit + limits flood: RSS flat (within 10 %) from flood, 7 s in (middle) to flood, 13 s in (end)', met: true, measured: '+4.0 %' });
    r.flood.points[3]!.rssMiB = 180;
    expect(flat()).toMatchObject({ met: false, measured: '+20.0 %', short: '10.0 %' });
    // Too few points to compare: no judgement rather than a wrong one.
    r.flood.points = r.flood.points.slice(0, 2);
    expect(flat()).toBeUndefined();
  });

  it("judges another person's median during the flood against theirs without it, within 1.25×", () => {
    const r = fixture();
    const other = () => targets(r).find((x) => x.name.startsWith("audit + limits flood: another person's median"));
    expect(other()).toBeUndefined();
    r.flood = {
      seconds: 15,
      connections: 10,
      ok: 200,
      limited: 1_400,
      other: 0,
      audit: { written: 1_600, dropped: 0, failed: 0 },
      points: [],
      otherUser: { quiet: { p50: 6, p95: 9, n: 40 }, during: { p50: 6.6, p95: 12, n: 200 } },
    };
    expect(other()).toMatchObject({ met: true, measured: '1.10×' });
    expect(renderMarkdown(r)).toContain('median 6.00 ms, p95 9.00 ms without the flood (40 calls); median 6.60 ms (1.10×), p95 12.00 ms during it (200 calls');
    r.flood.otherUser!.during.p50 = 9;
    expect(other()).toMatchObject({ met: false, measured: '1.50×', short: '0.25×' });
  });

  it("reports another person's p99 while audit writes at full rate on SQLite (issue 26 #10), and nothing of it for older results", () => {
    const r = fixture();
    expect(renderMarkdown(r)).not.toContain('while audit writes at full rate');
    const l = (p50: number, p95: number, p99: number, max: number, n: number) => ({ p50, p95, p99, max, n });
    r.auditStall = { seconds: 12, connections: 10, people: 4, rps: 950, errors: 0, auditWritten: 11_800, quiet: l(4, 6, 8, 9, 120), during: l(9, 14, 20, 31, 330) };
    const md = renderMarkdown(r);
    expect(md).toContain("**Another person's p99 while audit writes at full rate on SQLite** (issue 26 #10): 20.00 ms, against 8.00 ms without the load (2.50×).");
    expect(md).toContain('over 10 connections for 12 s: 950 calls/s, 11,800 audit records written, 0 failed. Meanwhile 4 other people');
    expect(md).toContain('| without the load | 120 | 4.00 | 6.00 | 8.00 | 9.00 |');
    expect(md).toContain('| during it (from its first second) | 330 | 9.00 | 14.00 | 20.00 | 31.00 |');
  });

  it('writes latest.json (round-trips), a dated copy, latest.md and chart.svg', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-report-'));
    try {
      const { files } = await writeReport(fixture(), dir);
      expect((await readdir(dir)).sort()).toEqual(['2026-11-22.json', 'chart.svg', 'latest.json', 'latest.md']);
      expect(files).toHaveLength(4);
      expect(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8'))).toEqual(fixture());
      expect(await readFile(join(dir, 'latest.md'), 'utf8')).toBe(renderMarkdown(fixture()));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
