import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BenchResults, type LoadResult, type MemoryPoint, type Mode, MODE_TITLES, SCENARIO_LABELS, type Scenario } from './results.js';

const MODES: Mode[] = ['stateless', 'stateful', 'stateless-2026'];
/** Issue 13: a cached opaque check does the same work as a cached JWT check, so the same bar for both. */
const JWT_TARGET = 0.95;
const WARM_INTROSPECTION_TARGET = 0.95;
/** Issue 17: the audit trail and fair-use limits against the same server with both off; the write is off the request path. */
const AUDIT_LIMITS_TARGET = 0.97;
/** Issue 29: sessions recorded in the shared table against the same server keeping them in memory, every request on the replica that holds its session. */
const SHARED_SESSIONS_TARGET = 0.95;
/** Issue 17: memory under a flood, end against middle (the audit queue is bounded). */
const FLOOD_FLAT_PERCENT = 10;
/** Issue 17: a flood from one token must not slow another person: their median within this of their median without it. */
const FLOOD_OTHER_USER_RATIO = 1.25;
const ORDER: Scenario[] = ['baseline', 'jwt', 'opaque-cached', 'opaque-introspect', 'introspect-everything', 'credential', 'audit-limits', 'shared-sessions'];

const x2 = (n: number) => `${n.toFixed(2)}×`;
const ms = (n: number) => n.toFixed(2);
const signed = (n: number) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(2)}`;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (n: number) => n.toFixed(1);

/** Range of a scenario's per-round throughput ratios to the baseline run beside it. */
function rpsRange(l: LoadResult): string {
  const ratios = l.rounds.map((r, i) => (l.pairedBaseline[i] ? r.rps / l.pairedBaseline[i]!.rps : NaN)).filter((x) => Number.isFinite(x));
  return ratios.length > 1 ? ` (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
}

/** Range of a scenario's per-round capacity ratios (baseline CPU µs per request over the scenario's). */
function cpuRange(l: LoadResult): string {
  const ratios = l.rounds.map((r, i) => (l.pairedBaseline[i]?.cpuUs && r.cpuUs ? l.pairedBaseline[i]!.cpuUs! / r.cpuUs : NaN)).filter((x) => Number.isFinite(x));
  return ratios.length > 1 ? ` (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
}

function rowsOf(r: BenchResults, mode: Mode): LoadResult[] {
  return ORDER.map((s) => r.load.find((l) => l.mode === mode && l.scenario === s)).filter((l): l is LoadResult => l !== undefined);
}

function find(r: BenchResults, mode: Mode, scenario: Scenario): LoadResult | undefined {
  return r.load.find((l) => l.mode === mode && l.scenario === scenario);
}

interface Target {
  name: string;
  measured: string;
  met: boolean;
  /** What is missing, in the target's unit, when not met. */
  short: string;
}

/** The issue's targets, each judged from this run. */
export function targets(r: BenchResults): Target[] {
  const out: Target[] = [];
  for (const mode of MODES) {
    const jwt = find(r, mode, 'jwt');
    const cached = find(r, mode, 'opaque-cached');
    const everything = find(r, mode, 'introspect-everything');
    const audit = find(r, mode, 'audit-limits');
    const sessions = find(r, mode, 'shared-sessions');
    if (jwt) {
      out.push({
        name: `${mode}: JWT throughput ≥ ${JWT_TARGET.toFixed(2)}× baseline`,
        measured: x2(jwt.ratio.rps),
        met: jwt.ratio.rps >= JWT_TARGET,
        short: `${(JWT_TARGET - jwt.ratio.rps).toFixed(2)}×`,
      });
      if (jwt.ratio.cpu !== undefined) {
        out.push({
          name: `${mode}: JWT server CPU per request ≥ ${JWT_TARGET.toFixed(2)}× baseline capacity`,
          measured: x2(jwt.ratio.cpu),
          met: jwt.ratio.cpu >= JWT_TARGET,
          short: `${(JWT_TARGET - jwt.ratio.cpu).toFixed(2)}×`,
        });
      }
      out.push({ name: `${mode}: JWT p99 added latency < 1 ms`, measured: `${signed(jwt.p99AddedMs)} ms`, met: jwt.p99AddedMs < 1, short: `${(jwt.p99AddedMs - 1).toFixed(2)} ms` });
    }
    if (cached) {
      out.push({
        name: `${mode}: warm introspection cache ≥ ${WARM_INTROSPECTION_TARGET.toFixed(2)}× baseline`,
        measured: x2(cached.ratio.rps),
        met: cached.ratio.rps >= WARM_INTROSPECTION_TARGET,
        short: `${(WARM_INTROSPECTION_TARGET - cached.ratio.rps).toFixed(2)}×`,
      });
      if (cached.ratio.cpu !== undefined) {
        out.push({
          name: `${mode}: warm introspection server CPU per request ≥ ${WARM_INTROSPECTION_TARGET.toFixed(2)}× baseline capacity`,
          measured: x2(cached.ratio.cpu),
          met: cached.ratio.cpu >= WARM_INTROSPECTION_TARGET,
          short: `${(WARM_INTROSPECTION_TARGET - cached.ratio.cpu).toFixed(2)}×`,
        });
      }
    }
    if (audit) {
      out.push({
        name: `${mode}: audit trail + fair-use limits throughput ≥ ${AUDIT_LIMITS_TARGET.toFixed(2)}× both off`,
        measured: x2(audit.ratio.rps),
        met: audit.ratio.rps >= AUDIT_LIMITS_TARGET,
        short: `${(AUDIT_LIMITS_TARGET - audit.ratio.rps).toFixed(2)}×`,
      });
      if (audit.ratio.cpu !== undefined) {
        out.push({
          name: `${mode}: audit trail + fair-use limits server CPU per request ≥ ${AUDIT_LIMITS_TARGET.toFixed(2)}× both-off capacity`,
          measured: x2(audit.ratio.cpu),
          met: audit.ratio.cpu >= AUDIT_LIMITS_TARGET,
          short: `${(AUDIT_LIMITS_TARGET - audit.ratio.cpu).toFixed(2)}×`,
        });
      }
    }
    if (sessions) {
      out.push({
        name: `${mode}: sessions in the shared table throughput ≥ ${SHARED_SESSIONS_TARGET.toFixed(2)}× in memory only`,
        measured: x2(sessions.ratio.rps),
        met: sessions.ratio.rps >= SHARED_SESSIONS_TARGET,
        short: `${(SHARED_SESSIONS_TARGET - sessions.ratio.rps).toFixed(2)}×`,
      });
      if (sessions.ratio.cpu !== undefined) {
        out.push({
          name: `${mode}: sessions in the shared table server CPU per request ≥ ${SHARED_SESSIONS_TARGET.toFixed(2)}× in-memory capacity`,
          measured: x2(sessions.ratio.cpu),
          met: sessions.ratio.cpu >= SHARED_SESSIONS_TARGET,
          short: `${(SHARED_SESSIONS_TARGET - sessions.ratio.cpu).toFixed(2)}×`,
        });
      }
    }
    if (cached && everything) {
      const times = cached.rps / everything.rps;
      out.push({ name: `${mode}: ≥ 20× the introspect-everything pattern (${int(r.settings.registeredClients)} clients)`, measured: `${times.toFixed(0)}×`, met: times >= 20, short: `${(20 - times).toFixed(1)}×` });
    }
  }
  if (r.removedCheck) {
    const base = find(r, 'stateful', 'jwt') ?? find(r, 'stateless', 'jwt');
    if (base) {
      const share = (r.removedCheck.addedMicroseconds / (1e6 / base.rps)) * 100;
      out.push({ name: 'removed-subject check ≤ 1 % of a JWT tool call', measured: `${share.toFixed(3)} %`, met: share <= 1, short: `${(share - 1).toFixed(3)} %` });
    }
  }
  if (r.pagination) {
    const p = r.pagination;
    out.push({ name: `page ${int(p.page)} of ${int(p.notes)} notes within 1.25× of page 1 (keyset)`, measured: x2(p.ratio), met: p.ratio <= 1.25, short: `${(p.ratio - 1.25).toFixed(2)}×` });
  }
  for (const t of r.memory?.tokens ?? []) {
    const [, tenK, twentyK] = t.points;
    if (!tenK || !twentyK) continue;
    const change = (twentyK.rssMiB / tenK.rssMiB - 1) * 100;
    out.push({
      name: `${t.kind} tokens: RSS flat (within 10 %) from ${tenK.label} to ${twentyK.label}`,
      measured: `${change >= 0 ? '+' : '−'}${Math.abs(change).toFixed(1)} %`,
      met: change <= 10,
      short: `${(change - 10).toFixed(1)} %`,
    });
  }
  const flood = r.flood && floodGrowth(r.flood);
  if (flood) {
    out.push({
      name: `audit + limits flood: RSS flat (within ${FLOOD_FLAT_PERCENT} %) from ${flood.middle.label} to ${flood.end.label}`,
      measured: `${flood.rssPercent >= 0 ? '+' : '−'}${Math.abs(flood.rssPercent).toFixed(1)} %`,
      met: flood.rssPercent <= FLOOD_FLAT_PERCENT,
      short: `${(flood.rssPercent - FLOOD_FLAT_PERCENT).toFixed(1)} %`,
    });
  }
  const other = r.flood?.otherUser;
  if (other) {
    const ratio = other.during.p50 / other.quiet.p50;
    out.push({
      name: `audit + limits flood: another person's median whoami during the flood within ${FLOOD_OTHER_USER_RATIO}× of without it`,
      measured: x2(ratio),
      met: ratio <= FLOOD_OTHER_USER_RATIO,
      short: `${(ratio - FLOOD_OTHER_USER_RATIO).toFixed(2)}×`,
    });
  }
  return out;
}

/** A flood's growth from its middle point to its end point (the last two), RSS and heap, in per cent. */
export function floodGrowth(f: NonNullable<BenchResults['flood']>): { middle: MemoryPoint; end: MemoryPoint; rssPercent: number; heapPercent: number } | undefined {
  const [middle, end] = f.points.slice(-2);
  if (!middle || !end || f.points.length < 3) return undefined;
  return { middle, end, rssPercent: (end.rssMiB / middle.rssMiB - 1) * 100, heapPercent: (end.heapUsedMiB / middle.heapUsedMiB - 1) * 100 };
}

/** An A/A run's spread: the lowest and highest median ratio, and the lowest and highest single round's. */
export function aaSpread(r: BenchResults): { medians: [number, number]; rounds: [number, number] } {
  const paired = r.load.filter((l) => l.scenario !== 'baseline');
  const medians = paired.map((l) => l.ratio.rps);
  const rounds = paired.flatMap((l) => l.rounds.map((x, i) => x.rps / l.pairedBaseline[i]!.rps));
  return { medians: [Math.min(...medians), Math.max(...medians)], rounds: [Math.min(...rounds), Math.max(...rounds)] };
}

/** How the load runs were made and paired, as the report's opening sentences. */
function loadMethod(r: BenchResults): string {
  const s = r.settings;
  const load = `Load: \`tools/call ${s.tool}\` over ${s.connections} keep-alive connections per server, ${s.durationSeconds} s per run after 1 s of unmeasured warm-up, ${s.rounds} rounds${s.quick ? ' (quick run: load only)' : ''}; ${s.cpuPlacement}${s.loadAverage ? `; machine load average ${s.loadAverage[0].toFixed(1)}–${s.loadAverage[1].toFixed(1)} during the load runs (on ${r.machine.cores} cores; the bench itself keeps about 3 tasks runnable, so more means other work shared the machine)` : ''}. `;
  const capacity = "Capacity is the baseline's server CPU µs per request over the scenario's: what the check costs the server.";
  const sessions = r.load.find((l) => l.scenario === 'shared-sessions');
  const ownTwin =
    (r.load.some((l) => l.scenario === 'audit-limits')
      ? " The audit-limits row's twin is the same JWT server with the audit trail and fair-use limits off (not the fixed principal), so its ratios are what those two cost; its twin's runs are not in the baseline row." +
        (s.auditLimits ? ` **In this run the scenario had only ${s.auditLimits === 'audit' ? 'the audit trail' : 'the fair-use limits'} on** (BENCH_AUDIT_LIMITS=${s.auditLimits}).` : '')
      : '') +
    (sessions
      ? ` The shared-sessions row (issue 29, ${sessions.rounds.length} rounds) is one stateful server with the fixed principal whose session store switches on the person: the scenario's session is recorded in the shared table (SQLite), as every replica records it, and its streams are kept for Last-Event-ID resumes as the app keeps them on SQLite (in the process's memory: one entry per answer, and the SDK's priming event on each answer stream), its twin's session in an in-memory store with the same contract (bench/memorySessionsStore.ts) and its streams nowhere, as sessions were before issue 29; each side has one session and every request lands on the server that holds it, so the ratio is what sharing a session with every replica costs a request on the replica holding it; its twin's runs are not in the baseline row.`
      : '');
  if (s.pairing === 'same-process') {
    return (
      `Load: \`tools/call ${s.tool}\` over ${s.connections} keep-alive connections, ${s.durationSeconds} s per side per round in turns of ${s.sliceMs ?? 250} ms, ${s.rounds} rounds${s.quick ? ' (quick run: load only)' : ''}; ${s.cpuPlacement}${s.loadAverage ? `; machine load average ${s.loadAverage[0].toFixed(1)}–${s.loadAverage[1].toFixed(1)} during the load runs (${r.machine.cores} cores)` : ''}. ` +
      `Each scenario and its baseline (the same server with a fixed principal instead of the token check) are served by ONE server in one process whose verifier switches on the token, so the two sides run the same code with the same JIT state and differ only in the check; the audit-limits scenario differs in configuration, so its twin is a second server in the same process, in ${s.twinProcesses ?? 4} processes built in both orders, each round in the next (two servers of one build came out up to ±5 % apart by themselves). ` +
      `After ${s.warmSeconds ?? 8} s of unmeasured turns per pair, each round loads the scenario and its twin in alternating turns over the same kept connections (which side goes first flips every round), so the host's drifts over seconds reach both alike; a side's numbers are sums over its own turns (server CPU read between turns). ` +
      'Values are medians over the rounds; each ratio (and added p99) is the median over rounds of the scenario against its twin in the same round, with the range of those per-round ratios in brackets; the baseline row is every twin of that mode. ' +
      capacity +
      ownTwin
    );
  }
  if (s.pairing === 'concurrent') {
    return (
      load +
      'Each scenario server has a baseline twin (the same configuration with a fixed principal instead of the token check); the two are loaded at the same time, sharing one CPU, so other load on the machine slows both alike; rounds alternate the scenario order. ' +
      'Values are medians over the rounds; each ratio (and added p99) is the median over rounds of the scenario against its twin in the same round, with the range of those per-round ratios in brackets; the baseline row is every twin of that mode. ' +
      capacity +
      ownTwin
    );
  }
  return (
    load +
    'Each scenario run next to a baseline run, the order flipping each round. ' +
    'Values are medians over the rounds; each ratio (and added p99) is the median over rounds of the scenario against the baseline run right next to it, with the range of those per-round ratios in brackets. ' +
    capacity
  );
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const s = r.settings;
  const lines: string[] = [`Run ${r.date.slice(0, 10)} on ${m.cpu} (${m.cores} cores, ${m.memoryGiB} GiB), Node ${m.node}, ${m.os}, Ory Hydra ${m.hydra}. ${loadMethod(r)}`, ''];
  if (s.aa) {
    lines.push(
      `**A/A run**: every scenario server was composed like its baseline twin (fixed principal, no token check${r.load.some((l) => l.scenario === 'audit-limits') ? '; audit-limits: JWT with the audit trail and limits off' : ''}${r.load.some((l) => l.scenario === 'shared-sessions') ? '; shared-sessions: sessions in memory only' : ''}), so every ratio should be 1.00×; how far they stray is the noise of the method, not a cost.`,
      '',
    );
  }
  for (const mode of MODES) {
    const rows = rowsOf(r, mode);
    if (rows.length === 0) continue;
    const withCpu = rows.every((l) => l.cpuUs !== undefined && l.ratio.cpu !== undefined);
    lines.push(`**${MODE_TITLES[mode]}**`, '');
    lines.push(`| scenario | req/s | × baseline | p50 ms | × baseline | p99 ms | × baseline | p99 added ms |${withCpu ? ' server CPU µs/req | capacity × baseline |' : ''}`);
    lines.push(`|---|---:|---:|---:|---:|---:|---:|---:|${withCpu ? '---:|---:|' : ''}`);
    for (const l of rows) {
      const errors = l.rounds.reduce((a, x) => a + x.errors, 0);
      const label = SCENARIO_LABELS[l.scenario] + (errors > 0 ? ` (errors: ${errors})` : '');
      const cpu = withCpu ? ` ${int(l.cpuUs!)} | ${x2(l.ratio.cpu!)}${cpuRange(l)} |` : '';
      lines.push(`| ${label} | ${int(l.rps)} | ${x2(l.ratio.rps)}${rpsRange(l)} | ${ms(l.p50)} | ${x2(l.ratio.p50)} | ${ms(l.p99)} | ${x2(l.ratio.p99)} | ${l.scenario === 'baseline' ? '' : signed(l.p99AddedMs)} |${cpu}`);
    }
    lines.push('');
  }
  if (r.settings.aa) {
    const a = aaSpread(r);
    lines.push('**A/A check** (every ratio should be 1.00×)', '', '| | lowest | highest |', '|---|---:|---:|');
    lines.push(`| median throughput ratio of a pair | ${x2(a.medians[0])} | ${x2(a.medians[1])} |`, `| one round's throughput ratio | ${x2(a.rounds[0])} | ${x2(a.rounds[1])} |`, '');
  } else {
    lines.push('**Targets**', '', '| target | measured | met? |', '|---|---:|---|');
    for (const t of targets(r)) lines.push(`| ${t.name} | ${t.measured} | ${t.met ? 'yes' : `**no** (short by ${t.short})`} |`);
    lines.push('');
  }

  if (r.verifier.length > 0) {
    const base = find(r, 'stateful', 'baseline');
    const requestUs = base ? 1e6 / base.rps : undefined;
    lines.push('**The check alone** (in-process, real Hydra tokens; median of 7 batches)', '');
    lines.push(`| check | µs per call |${requestUs ? ' share of a stateful baseline request |' : ''}`, `|---|---:|${requestUs ? '---:|' : ''}`);
    for (const v of r.verifier) {
      const share = requestUs ? ` ${((v.microseconds / requestUs) * 100).toFixed(1)} % |` : '';
      lines.push(`| ${v.check} | ${v.microseconds.toFixed(1)} |${share}`);
    }
    if (requestUs) lines.push('', `A stateful baseline request takes ${requestUs.toFixed(0)} µs of server time (1 / its req/s). Waits on Hydra overlap with other requests, so their share overstates their throughput cost.`);
    lines.push('');
  }

  if (r.removedCheck) {
    const c = r.removedCheck;
    lines.push(`**Removed-subject check** (cached-JWT path, in process, ${int(c.removedSubjects)} removed subjects listed; 11 alternating batches of 20,000 checks)`, '');
    lines.push('| | µs per check |', '|---|---:|');
    lines.push(`| without the check | ${c.withoutMicroseconds.toFixed(3)} |`, `| with the check | ${c.withMicroseconds.toFixed(3)} |`);
    lines.push(`| added (median of pairs, range) | ${c.addedMicroseconds.toFixed(3)} (${c.addedRange[0].toFixed(3)} to ${c.addedRange[1].toFixed(3)}) |`, '');
  }
  if (r.pagination) {
    const p = r.pagination;
    lines.push(`**Pagination** (\`notes_list\`'s store query, ${int(p.notes)} notes of one person, ${p.pageSize} per page, SQLite, in process; 9 alternating batches)`, '');
    lines.push('| query | µs per page |', '|---|---:|');
    lines.push(`| page 1 (no cursor) | ${p.firstPageMicroseconds.toFixed(0)} |`, `| page ${int(p.page)} (keyset cursor) | ${p.deepPageMicroseconds.toFixed(0)} |`, `| page ${int(p.page)} by OFFSET, for contrast | ${p.offsetMicroseconds.toFixed(0)} |`);
    lines.push('', `Page ${int(p.page)} ÷ page 1: ${x2(p.ratio)} (range ${p.ratioRange[0].toFixed(2)}–${p.ratioRange[1].toFixed(2)}).`, '');
  }
  if (r.memory) {
    lines.push('**Memory** (server process, after a forced GC)', '');
    lines.push('| server | point | RSS MiB | heap used MiB | entries |', '|---|---|---:|---:|---:|');
    for (const t of r.memory.tokens) {
      for (const p of t.points) lines.push(`| ${t.kind} token cache (bound ${int(t.bound)}) | ${p.label} | ${mib(p.rssMiB)} | ${mib(p.heapUsedMiB)} | ${int(p.entries)} |`);
    }
    const sess = r.memory.sessions;
    for (const p of sess.points) lines.push(`| session registry (bound ${int(sess.bound)}) | ${p.label} | ${mib(p.rssMiB)} | ${mib(p.heapUsedMiB)} | ${int(p.entries)} |`);
    const [none, full] = sess.points;
    if (none && full && full.entries > 0) {
      const perRss = ((full.rssMiB - none.rssMiB) * 1024) / full.entries;
      const perHeap = ((full.heapUsedMiB - none.heapUsedMiB) * 1024) / full.entries;
      lines.push('', `Sessions beyond the bound refused: ${int(sess.refused)}. One open session costs about ${perHeap.toFixed(0)} KiB of heap (${perRss.toFixed(0)} KiB of RSS).`);
    }
    lines.push('');
  }
  if (r.flood) {
    const fl = r.flood;
    const total = fl.ok + fl.limited + fl.other;
    lines.push(
      `**Memory under a flood** (audit trail on, default fair-use limits; one token, ${fl.connections} connections, ${fl.seconds} s; server process, each point after a forced GC, taken while the flood runs)`,
      '',
    );
    lines.push('| point | RSS MiB | heap used MiB | audit records written so far |', '|---|---:|---:|---:|');
    for (const p of fl.points) lines.push(`| ${p.label} | ${mib(p.rssMiB)} | ${mib(p.heapUsedMiB)} | ${int(p.entries)} |`);
    const g = floodGrowth(fl);
    lines.push(
      '',
      `Answers: ${int(total)} (${int(total / fl.seconds)}/s): ${int(fl.ok)} 200, ${int(fl.limited)} 429, ${int(fl.other)} other. Audit records over the flood: ${int(fl.audit.written)} written, ${int(fl.audit.dropped)} dropped at the full queue, ${int(fl.audit.failed)} lost to failed writes.` +
        (g ? ` Middle to end: RSS ${signed(g.rssPercent)} %, heap ${signed(g.heapPercent)} %.` : ''),
      '',
    );
    if (fl.otherUser) {
      const { quiet, during } = fl.otherUser;
      lines.push(
        `Another person (their own token) calling whoami every 125 ms: median ${quiet.p50.toFixed(2)} ms, p95 ${quiet.p95.toFixed(2)} ms without the flood (${quiet.n} calls); median ${during.p50.toFixed(2)} ms (${x2(during.p50 / quiet.p50)}), p95 ${during.p95.toFixed(2)} ms during it (${during.n} calls, from its second second).`,
        '',
      );
    }
  }
  if (r.auditStall) {
    const st = r.auditStall;
    const row = (label: string, l: typeof st.quiet) => `| ${label} | ${int(l.n)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} |`;
    lines.push(
      `**Another person's p99 while audit writes at full rate on SQLite** (issue 26 #10): ${ms(st.during.p99)} ms, against ${ms(st.quiet.p99)} ms without the load (${x2(st.during.p99 / st.quiet.p99)}). One token loads a server with the audit trail on and the fair-use limits at their maxima (every call served, taken from its bucket and audited) over ${st.connections} connections for ${st.seconds} s: ${int(st.rps)} calls/s, ${int(st.auditWritten)} audit records written, ${int(st.errors)} failed. Meanwhile ${st.people} other people (each their own token) call whoami every 125 ms, their latencies pooled; each of their calls is a fair-use take, a write on the server's thread.`,
      '',
      '| other people\'s whoami | calls | p50 ms | p95 ms | p99 ms | max ms |',
      '|---|---:|---:|---:|---:|---:|',
      row('without the load', st.quiet),
      row('during it (from its first second)', st.during),
      '',
    );
  }
  if (r.sessionRebuild) {
    const sr = r.sessionRebuild;
    const row = (label: string, l: typeof sr.rebuild) => `| ${label} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} |`;
    lines.push(
      `**A session's next request on another replica** (issue 29): rebuilding it from its row takes ${ms(sr.rebuild.p50)} ms (p99 ${ms(sr.rebuild.p99)} ms), and that request takes ${ms(sr.added.p50)} ms more than the next one there (p99 ${ms(sr.added.p99)} ms). ${int(sr.sessions)} sessions, one at a time, after a few not counted: each opened on one server process (initialize, initialized), its next request (whoami) sent to a second process on the same database (${sr.database}), which rebuilds it (SharedSessions.rebuild: read and touch the row, build the transport and server, restore the initialized state; timed by that server), then one more whoami there, now held. Fixed principal, so no token check is in the numbers.`,
      '',
      '| ms | p50 | p95 | p99 | max |',
      '|---|---:|---:|---:|---:|',
      row('rebuild, on the second process', sr.rebuild),
      row('first request there (rebuilt), client side', sr.firstRequest),
      row('next request there (held), client side', sr.heldRequest),
      row('added: first − next, per session', sr.added),
      '',
    );
  }
  const f = r.flow;
  if (f) {
    lines.push(`**OAuth flow** (${f.runs} runs against the real Hydra: a new client registered each run, fresh browser, sign-in, consent, code exchange)`, '');
    lines.push('| | ms |', '|---|---:|', `| whole flow, median | ${f.medianMs.toFixed(1)} |`, `| whole flow, p95 | ${f.p95Ms.toFixed(1)} |`);
    for (const step of f.steps) lines.push(`| ${step.name} (median) | ${step.medianMs.toFixed(1)} |`);
    lines.push('');
  }
  if (r.phases?.length) {
    lines.push(`**Phases** (whole run ${int(r.phases.reduce((a, p) => a + p.seconds, 0))} s)`, '', '| phase | s |', '|---|---:|');
    for (const p of r.phases) lines.push(`| ${p.name} | ${int(p.seconds)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

const escapeXml = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Throughput of each scenario relative to its mode's baseline, as horizontal bars. */
export function renderChart(r: BenchResults): string {
  const colors: Record<Scenario, string> = {
    baseline: '#8c8c8c',
    jwt: '#2f6fb3',
    'opaque-cached': '#3f9b5b',
    'opaque-introspect': '#d08a2e',
    'introspect-everything': '#b8463c',
    credential: '#7b5ea7',
    'audit-limits': '#2a9d9d',
    'shared-sessions': '#a0522d',
  };
  const width = 760;
  const labelW = 300;
  const barMax = width - labelW - 70;
  const rowH = 20;
  const groups = MODES.map((mode) => ({ mode, rows: rowsOf(r, mode) })).filter((g) => g.rows.length > 0);
  const max = Math.max(1.1, ...r.load.map((l) => l.ratio.rps));
  const scale = (v: number) => (v / max) * barMax;
  const parts: string[] = [];
  let y = 44;
  for (const g of groups) {
    parts.push(`<text x="12" y="${y}" font-weight="bold">${escapeXml(MODE_TITLES[g.mode])}</text>`);
    y += 8;
    for (const l of g.rows) {
      const w = Math.max(1, scale(l.ratio.rps));
      parts.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${escapeXml(SCENARIO_LABELS[l.scenario])}</text>`);
      parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${colors[l.scenario]}"/>`);
      parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 14}">${escapeXml(x2(l.ratio.rps))}</text>`);
      y += rowH;
    }
    y += 22;
  }
  const height = y;
  const one = labelW + scale(1);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" fill="#222">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="20" font-size="14" font-weight="bold">Throughput relative to no token check (higher is better)</text>`,
    `<line x1="${one.toFixed(1)}" y1="30" x2="${one.toFixed(1)}" y2="${height - 16}" stroke="#555" stroke-dasharray="4 3"/>`,
    `<text x="${one.toFixed(1)}" y="${height - 4}" text-anchor="middle" fill="#555">1.0× baseline</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** latest.json, a dated copy, latest.md and chart.svg in `dir`. */
export async function writeReport(r: BenchResults, dir: string): Promise<{ markdown: string; files: string[] }> {
  await mkdir(dir, { recursive: true });
  const markdown = renderMarkdown(r);
  const json = `${JSON.stringify(r, null, 2)}\n`;
  const files: [string, string][] = [
    ['latest.json', json],
    [`${r.date.slice(0, 10)}.json`, json],
    ['latest.md', markdown],
    ['chart.svg', renderChart(r)],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return { markdown, files: files.map(([name]) => join(dir, name)) };
}
