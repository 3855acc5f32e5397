import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, type FetchLike, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureHydraBinary, freeLoopbackPort, ourPageUrls, type RunningHydra, startHydra } from '../../scripts/hydra.js';
import { createUserStore } from '../../src/account/userStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';
import { Browser } from '../support/browser.js';
import { createTestDatabase } from '../support/postgres.js';
import { signInAndAllow } from './flow.js';
import type { TestUser } from './stack.js';
import { V2OAuthClient } from './v2Client.js';
import { cutAfter } from '../support/streamCut.js';

/**
 * Issue 29, without affinity: one real Ory Hydra, THREE server processes of
 * ours (each its own OS process, `node --import tsx src/main.ts`, so SIGKILL
 * and SIGTERM are real) on one real PostgreSQL, behind the real Caddy with
 * `lb_policy round_robin`. The official SDK v2 client (2025 sessions, the
 * plain `initialize` handshake) goes through Caddy's URL only. Each request
 * the clients send carries an X-Request-Id; the replicas' request log lines
 * name it, so the test knows which replica served which request.
 *
 * Caddy is configured as an operator would for replicas that are stopped and
 * started under it (see caddyfile() below for each setting and why). On
 * SIGTERM a replica first leaves the rotation (src/main.ts, leaveRotation:
 * /readyz 503, `Connection: close`, until a second passes without a request,
 * at most 5 s), then stops as before (drain, close).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REPLICAS = 3;
const LOAD_CLIENTS = 10;

interface LogLine {
  msg?: string;
  level?: string;
  request_id?: string;
  method?: string;
  path?: string;
  status?: number;
  session?: string;
  [k: string]: unknown;
}

/** One slot of the three: a port, and the processes that have run on it (one generation per start). */
interface Slot {
  index: number;
  port: number;
  generation: number;
  proc?: ChildProcess;
  exited?: Promise<number | null>;
  /** Every parsed log line of every generation on this slot, tagged with its generation. */
  lines: (LogLine & { gen: number })[];
  raw: string[];
}

const phases: [string, number][] = [];
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    const s = (performance.now() - started) / 1000;
    phases.push([name, s]);
    console.log(`[replicas] ${name}: ${s.toFixed(1)} s`);
  }
}

async function waitFor<T>(what: string, attempt: () => Promise<T | undefined> | T | undefined, ms = 60_000, context: () => string = () => ''): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await Promise.resolve()
      .then(attempt)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what}: not after ${ms} ms\n${context()}`);
    await sleep(50);
  }
}

/**
 * The Caddyfile an operator would write for N interchangeable replicas:
 * - `lb_policy round_robin`: no affinity of any kind.
 * - `health_uri /readyz` (active checks every second): a replica that is
 *   stopping, not yet ready, or gone is taken out of rotation, and a fresh one
 *   is put back once its /readyz answers 200.
 * - `fail_duration` (passive checks): an upstream that just refused a
 *   connection is avoided for a moment, before the next active check.
 * - `lb_try_duration` / `lb_try_interval`: a request whose connection to an
 *   upstream is refused (a replica killed, or one that has closed its
 *   listener) is tried on another within that time; Caddy always retries a
 *   request that never reached an upstream.
 * - `buffer_requests`: needed on Caddy 2.6 for that retry to work with a
 *   body. Without it the first, refused attempt closes the request body and
 *   the retry on a live replica fails with 502 "http: invalid Read on closed
 *   Body" (caddyserver/caddy#5454, #7546; fixed upstream by #7547, 2026).
 *   MCP requests are small JSON bodies.
 * - `lb_retry_match` is NOT set: a POST that reached an upstream and failed
 *   is not sent again (it may have been carried out); Caddy's default retries
 *   only GET after a failed round trip. Our side makes that safe on SIGTERM
 *   (src/main.ts, leaveRotation): /readyz turns 503 and every answer carries
 *   `Connection: close` while requests are still served, so Caddy takes the
 *   replica out and holds no kept-alive connection to it when it closes.
 * - `flush_interval -1`: SSE answers and streams go through at once.
 */
function caddyfile(opts: { port: number; adminPort: number; upstreams: number[] }): string {
  return `{
	admin 127.0.0.1:${opts.adminPort}
	auto_https off
}
http://127.0.0.1:${opts.port} {
	bind 127.0.0.1
	reverse_proxy ${opts.upstreams.map((p) => `127.0.0.1:${p}`).join(' ')} {
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 50ms
		fail_duration 2s
		health_uri /readyz
		health_interval 1s
		health_timeout 2s
		flush_interval -1
		buffer_requests
	}
}
`;
}

let dir: string;
let hydra: RunningHydra;
const hydraLog: string[] = [];
let caddy: ChildProcess | undefined;
const caddyLog: string[] = [];
let dropDb: (() => Promise<void>) | undefined;
let db: Db | undefined;
let databaseUrl: string;
let base: string;
let mcpUrl: URL;
let sessionSecret: string;
const slots: Slot[] = [];

function envFor(port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    HOST: '127.0.0.1',
    PORT: String(port),
    // Three replicas are one service: one public URL (Caddy's), one secret, one database.
    PUBLIC_BASE_URL: base,
    TRUST_PROXY: '1',
    SESSION_SECRET: sessionSecret,
    DATABASE_URL: databaseUrl,
    HYDRA_PUBLIC_URL: hydra.publicUrl,
    HYDRA_ADMIN_URL: hydra.adminUrl,
    HYDRA_ISSUER: hydra.issuer,
    METRICS_PORT: 'off',
    // The request log lines (request id, path, status) say which replica served what.
    LOG_LEVEL: 'info',
    // Ten clients in tight loops are load, not abuse: fair use is tested on its own (scaleOut, fairUse).
    MCP_REQUESTS_PER_MINUTE: 'off',
  };
}

/** Start a fresh process on `slot`'s port and wait for its /readyz. */
async function startReplica(slot: Slot): Promise<void> {
  const gen = ++slot.generation;
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env: envFor(slot.port), stdio: ['ignore', 'pipe', 'pipe'] });
  slot.proc = proc;
  slot.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let partial = '';
  const onData = (b: Buffer) => {
    const text = partial + b.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line) continue;
      slot.raw.push(`[r${slot.index}.${gen}] ${line}`);
      try {
        slot.lines.push({ ...(JSON.parse(line) as LogLine), gen });
      } catch {
        // not a log line (a crash's stack)
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  let gone = false;
  void slot.exited.then(() => (gone = true));
  await waitFor(
    `replica ${slot.index} (generation ${gen}) ready`,
    async () => {
      if (gone) throw new Error('exited');
      const r = await fetch(`http://127.0.0.1:${slot.port}/readyz`, { headers: { 'x-request-id': `probe-${slot.index}-${gen}` } });
      return r.status === 200 ? true : undefined;
    },
    90_000,
    () => slot.raw.slice(-20).join('\n'),
  ).catch((e: Error) => {
    if (gone) throw new Error(`replica ${slot.index} exited while starting:\n${slot.raw.slice(-30).join('\n')}`);
    throw e;
  });
}

/** A signal to the slot's current process; resolves with its exit code once it has exited. */
async function signal(slot: Slot, sig: 'SIGTERM' | 'SIGKILL'): Promise<number | null> {
  slot.proc!.kill(sig);
  return slot.exited!;
}

/** Which slot (and generation) logged a request with this id, and its status. */
function servedBy(requestId: string): { slot: number; gen: number; status: number }[] {
  const found: { slot: number; gen: number; status: number }[] = [];
  for (const s of slots) for (const l of s.lines) if (l.msg === 'request' && l.request_id === requestId) found.push({ slot: s.index, gen: l.gen, status: l.status ?? 0 });
  return found;
}

interface Sent {
  id: string;
  path: string;
  httpMethod: string;
  rpc: string;
  /** A GET resuming a stream. */
  lastEventId?: string;
}

/** Set on a session to end the next tools/call's answer stream early, as a dropped connection would (the client then resumes with Last-Event-ID). */
type Cut = (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;

/** A fetch that tags every request with an X-Request-Id and remembers it, so the replicas' logs say where it went. */
function taggedFetch(tag: string, sent: Sent[], cuts: Cut[] = []): FetchLike {
  let n = 0;
  return async (url, init) => {
    const headers = new Headers(init?.headers);
    const id = `${tag}-${++n}`;
    headers.set('x-request-id', id);
    let rpc = '';
    if (typeof init?.body === 'string') {
      try {
        const m = JSON.parse(init.body) as { method?: string } | { method?: string }[];
        rpc = (Array.isArray(m) ? m.map((x) => x.method) : [m.method]).join(',');
      } catch {
        rpc = '?';
      }
    }
    const lastEventId = headers.get('last-event-id');
    sent.push({ id, path: new URL(String(url)).pathname, httpMethod: init?.method ?? 'GET', rpc, ...(lastEventId ? { lastEventId } : {}) });
    const res = await fetch(url, { ...init, headers });
    const cut = rpc === 'tools/call' && res.body ? cuts.shift() : undefined;
    return cut ? new Response(cut(res.body!), { status: res.status, headers: res.headers }) : res;
  };
}

interface Session {
  person: TestUser;
  client: Client;
  transport: StreamableHTTPClientTransport;
  oauth: V2OAuthClient;
  sent: Sent[];
  /** Errors the client reported outside any call (e.g. its GET stream). */
  transportErrors: string[];
  /** Push one to cut the next tools/call's stream short. */
  cuts: Cut[];
}

/** The whole flow through Caddy with the SDK v2 client (discovery, registration, sign-in, consent, token), then a 2025 session. */
async function connectThroughCaddy(person: TestUser, tag: string): Promise<Session> {
  const sent: Sent[] = [];
  const cuts: Cut[] = [];
  const oauth = new V2OAuthClient('http://127.0.0.1:53682/callback');
  const fetchTagged = taggedFetch(tag, sent, cuts);
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: oauth, fetch: fetchTagged });
  await expect(new Client({ name: 'replicas', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  expect(oauth.authorizationUrl, 'the v2 client asked to send the person to /authorize').toBeDefined();
  const back = await signInAndAllow(new Browser(), oauth as never, person, {});
  await first.finishAuth(back.url.searchParams);
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: oauth, fetch: fetchTagged });
  // No versionNegotiation: the plain 2025 `initialize` handshake, a stateful session.
  const client = new Client({ name: 'replicas', version: '1.0.0' });
  const transportErrors: string[] = [];
  // From here on, only the session's own requests.
  sent.length = 0;
  client.onerror = (e) => transportErrors.push(String(e));
  await client.connect(transport);
  expect(transport.sessionId, 'a 2025 session id').toBeTruthy();
  return { person, client, transport, oauth, sent, transportErrors, cuts };
}

/** Call a tool; its JSON answer, or a thrown error naming the tool's error text. */
async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<any> {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content as { type: string; text?: string }[]).map((c) => (c.type === 'text' ? c.text : '')).join('');
  if (result.isError) throw new Error(`${name} answered an error: ${text}`);
  return JSON.parse(text) as unknown;
}

/** POST straight to a replica's port (node:http, so the public Host can be sent as Caddy sends it); the status. */
function postStatus(port: number, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const people: TestUser[] = [];
let alice: Session;

beforeAll(async () => {
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('Caddy is not installed: `apt-get install caddy` (.ci/run installs it). This test runs the real proxy, never a stand-in.');
  }
  await phase('setup (PostgreSQL database, Hydra, 3 replicas, Caddy, people)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-replicas-'));
    const pg = await createTestDatabase(inject('postgresUrl'));
    databaseUrl = pg.url;
    dropDb = pg.drop;
    const [caddyPort, adminPort, ...ports] = await Promise.all(Array.from({ length: 2 + REPLICAS }, () => freeLoopbackPort()));
    base = `http://127.0.0.1:${caddyPort}`;
    mcpUrl = new URL(`${base}/mcp`);
    sessionSecret = randomBytes(32).toString('hex');
    hydra = await startHydra({
      binary: await ensureHydraBinary({ log: (l) => process.stderr.write(`[hydra build] ${l}\n`) }),
      dsn: 'memory',
      accessTokenStrategy: 'jwt',
      ...ourPageUrls(base),
      tokenUrl: `${base}/token`,
      secretsSystem: randomBytes(24).toString('hex'),
      log: (line) => hydraLog.push(line),
    });
    for (const [index, port] of ports.entries()) slots.push({ index, port: port!, generation: 0, lines: [], raw: [] });
    // All three start (and migrate) at once, as a Deployment's pods do.
    await Promise.all(slots.map((s) => startReplica(s)));

    const file = join(dir, 'Caddyfile');
    await writeFile(file, caddyfile({ port: caddyPort!, adminPort: adminPort!, upstreams: ports as number[] }));
    caddy = spawn('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_DATA_HOME: join(dir, 'caddy-data'), XDG_CONFIG_HOME: join(dir, 'caddy-config') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [caddy.stdout!, caddy.stderr!]) stream.on('data', (b: Buffer) => caddyLog.push(...b.toString().trim().split('\n')));
    const caddyExited = new Promise<void>((resolve) => caddy!.once('exit', () => resolve()));
    let caddyGone = false;
    void caddyExited.then(() => (caddyGone = true));
    await waitFor('our server through Caddy', async () => {
      if (caddyGone) return false;
      return (await fetch(`${base}/healthz`)).ok ? true : undefined;
    }, 30_000, () => caddyLog.slice(-20).join('\n'));
    if (caddyGone) throw new Error(`Caddy exited:\n${caddyLog.slice(-20).join('\n')}`);

    db = await openDatabase({ kind: 'postgres', url: databaseUrl });
    const users = createUserStore(db);
    for (let i = 0; i <= LOAD_CLIENTS; i++) {
      const email = `replicas${i}@example.com`;
      const password = `replicas password ${i}`;
      const added = await users.add(email, password);
      people.push({ email, password, sub: added.id });
    }
  });
}, 240_000);

afterAll(async () => {
  await alice?.client.close().catch(() => {});
  for (const s of slots) {
    if (s.proc && s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGTERM');
      await Promise.race([s.exited, sleep(15_000)]);
      if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    }
  }
  if (caddy && caddy.exitCode === null) {
    const exited = new Promise((resolve) => caddy!.once('exit', resolve));
    caddy.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  }
  await hydra?.stop();
  await db?.destroy();
  await dropDb?.();
  if (dir) await rm(dir, { recursive: true, force: true });
  console.log(`[replicas] phases: ${phases.map(([n, s]) => `${n.split(' (')[0]} ${s.toFixed(1)} s`).join(', ')}`);
}, 60_000);

/** Where each of a session's MCP requests (POST/DELETE /mcp) was served, by request id. */
function placements(session: Session, from = 0) {
  return session.sent.slice(from).map((s) => ({ ...s, served: servedBy(s.id) }));
}

const failureContext = () =>
  [
    ...slots.flatMap((s) => s.raw.filter((l) => /"level":"(warn|error)"|"status":[45]/.test(l)).slice(-15)),
    ...caddyLog.filter((l) => !l.includes('health_checker')).slice(-15),
  ].join('\n');

describe('three replicas behind Caddy round_robin, no affinity (issue 29)', () => {
  it('a 2025 session runs the whole OAuth flow through Caddy and its requests are served by different replicas, without errors', async () => {
    await phase('1. OAuth flow and a session across replicas', async () => {
      alice = await connectThroughCaddy(people[0]!, 'alice');
      const mark = alice.sent.length;
      const tools = await alice.client.listTools();
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['whoami', 'notes_add', 'notes_list']));
      const who = await call(alice.client, 'whoami');
      expect(who).toMatchObject({ sub: people[0]!.sub });
      const added = [];
      for (let i = 0; i < 4; i++) added.push(await call(alice.client, 'notes_add', { title: `alice ${i}`, body: 'across replicas' }));
      const listed = await call(alice.client, 'notes_list');
      expect((listed.notes as { title: string }[]).map((n) => n.title).sort()).toEqual(['alice 0', 'alice 1', 'alice 2', 'alice 3']);
      expect(await call(alice.client, 'whoami')).toMatchObject({ sub: people[0]!.sub });

      const sessionId = alice.transport.sessionId!;
      // Every MCP request of the session, from initialize on, was logged by exactly one replica with a 2xx.
      const mcp = placements(alice).filter((p) => p.path === '/mcp' && p.httpMethod === 'POST');
      const since = placements(alice, mark).filter((p) => p.path === '/mcp' && p.httpMethod === 'POST');
      await waitFor('every request of the session logged', () => (mcp.every((p) => servedBy(p.id).length === 1) ? true : undefined), 5000, failureContext);
      const served = mcp.map((p) => ({ ...p, served: servedBy(p.id) }));
      console.log(`[replicas] session ${sessionId.slice(0, 8)}…: ${served.map((p) => `${p.rpc || p.httpMethod}→r${p.served[0]?.slot}`).join(' ')}`);
      for (const p of served) {
        expect(p.served, `${p.id} (${p.rpc}) served once`).toHaveLength(1);
        expect(p.served[0]!.status, `${p.id} (${p.rpc})`).toBeLessThan(300);
      }
      const distinct = new Set(since.map((p) => servedBy(p.id)[0]?.slot));
      expect(distinct.size, 'the session was served by more than one replica').toBeGreaterThanOrEqual(2);
      // The replicas that served it without having opened it rebuilt it from the shared table.
      const rebuiltOn = slots.filter((s) => s.lines.some((l) => l.msg === 'session rebuilt' && l.session === sessionId)).map((s) => s.index);
      const openedOn = slots.filter((s) => s.lines.some((l) => l.msg === 'session opened' && l.session === sessionId)).map((s) => s.index);
      console.log(`[replicas] opened on r${openedOn.join(',')}, rebuilt on r${rebuiltOn.join(',r')}; replicas serving the calls: ${[...distinct].map((d) => `r${d}`).join(', ')}`);
      expect(openedOn).toHaveLength(1);
      expect(rebuiltOn.length).toBeGreaterThanOrEqual(1);
      expect(rebuiltOn).not.toContain(openedOn[0]);
      expect(alice.transportErrors).toEqual([]);
      for (const s of slots) expect(s.lines.filter((l) => l.level === 'error').map((l) => JSON.stringify(l)), `errors logged by r${s.index}`).toEqual([]);
    });
  }, 90_000);

  it('long_task: its progress reaches the client from the replica running it, and the cancellation, served by another replica, stops it there', async () => {
    await phase('1b. progress and cancellation across replicas', async () => {
      const mark = alice.sent.length;
      const linesBefore = slots.map((s) => s.lines.length);
      const progress: number[] = [];
      const cancel = new AbortController();
      const call = alice.client.callTool({ name: 'long_task', arguments: { seconds: 30 } }, {
        signal: cancel.signal,
        onprogress: (p) => {
          progress.push(p.progress);
          if (p.progress === 2) cancel.abort('enough');
        },
      });
      await expect(call).rejects.toThrow();
      expect(progress).toEqual([1, 2]);
      const cancelReq = alice.sent.slice(mark).find((s) => s.rpc === 'notifications/cancelled')!;
      expect(cancelReq, 'the SDK client sent notifications/cancelled').toBeDefined();
      // The replica running the call is the one whose tool saw the cancellation.
      const ranOn = await waitFor(
        'long_task stopped by the cancellation',
        () => slots.find((s) => s.lines.slice(linesBefore[s.index]).some((l) => l.msg === 'tool failed' && l.tool === 'long_task' && l.error === 'enough')),
        5000,
        failureContext,
      );
      const cancelledOn = await waitFor('the cancellation logged', () => servedBy(cancelReq.id)[0], 10_000, failureContext);
      console.log(`[replicas] long_task ran on r${ranOn.index}; its cancellation was served by r${cancelledOn.slot}`);
      expect(cancelledOn.slot, 'round robin put the cancellation on another replica').not.toBe(ranOn.index);
      // And the call's POST stream was ended there (no answer follows a cancellation; the SDK would keep it open).
      const callReq = alice.sent.slice(mark).find((s) => s.rpc === 'tools/call')!;
      const callLine = await waitFor("the cancelled call's stream closed", () => servedBy(callReq.id)[0], 5000, failureContext);
      expect(callLine.slot).toBe(ranOn.index);
      // The SDK v2 client does not abort a 2025 call's stream when it cancels; seeing it end without an
      // answer, it resumes it (Last-Event-ID) and finds the server's closing "cancelled" answer, which it
      // reports as an answer to a request it no longer waits for (MCP 2025-06-18 utilities/cancellation:
      // the client "SHOULD ignore any response" that arrives after cancelling). That report, and only it.
      await waitFor('the client resumed the cancelled stream', () => (alice.transportErrors.length ? true : undefined), 5000, failureContext).catch(() => {});
      expect(alice.transportErrors.every((e) => e.includes('Received a response for an unknown message ID') && e.includes('"code":-32800')), alice.transportErrors.join('\n')).toBe(true);
      alice.transportErrors.length = 0;
      // It stopped seconds into its 30, and recorded why.
      const run = await db!.selectFrom('records').select('value').where('sub', '=', people[0]!.sub).where('collection', '=', 'long_task').where('key', '=', 'last_run').executeTakeFirstOrThrow();
      expect(JSON.parse(run.value)).toMatchObject({ status: 'cancelled', of: 30 });
      expect((JSON.parse(run.value) as { completed: number }).completed).toBeLessThan(5);
    });
  }, 60_000);

  it('a stream cut mid-call resumes with Last-Event-ID on whichever replica Caddy picks: every progress step once, then the result', async () => {
    await phase('1c. resume on another replica', async () => {
      const mark = alice.sent.length;
      // Through the first progress event, then the connection drops.
      alice.cuts.push(cutAfter('notifications/progress'));
      const progress: number[] = [];
      const result = await alice.client.callTool({ name: 'long_task', arguments: { seconds: 4 } }, { onprogress: (p) => progress.push(p.progress), timeout: 30_000 });
      expect(JSON.parse((result.content as { text: string }[])[0]!.text)).toEqual({ completed: 4 });
      expect(progress, 'each step once, in order').toEqual([1, 2, 3, 4]);
      const callReq = alice.sent.slice(mark).find((s) => s.rpc === 'tools/call')!;
      const resumes = alice.sent.slice(mark).filter((s) => s.lastEventId);
      expect(resumes.length).toBeGreaterThanOrEqual(1);
      const ranOn = servedBy(callReq.id)[0]!;
      await waitFor('the resumes logged', () => (resumes.every((r) => servedBy(r.id).length === 1) ? true : undefined), 5000, failureContext);
      const resumedOn = resumes.map((r) => servedBy(r.id)[0]!);
      console.log(`[replicas] long_task ran on r${ranOn.slot}; its stream resumed on ${resumedOn.map((r) => `r${r.slot}:${r.status}`).join(' ')}`);
      expect(resumedOn.every((r) => r.status === 200)).toBe(true);
      expect(resumedOn.some((r) => r.slot !== ranOn.slot), 'at least one resume on a replica not running the call').toBe(true);
      expect(alice.transportErrors).toEqual([]);
    });
  }, 60_000);

  it('SIGKILL of the replica that served the last call mid-session: the session goes on on the others', async () => {
    await phase('2. SIGKILL one replica mid-session', async () => {
      const last = alice.sent.at(-1)!;
      const victim = slots[servedBy(last.id)[0]!.slot]!;
      const killedGen = victim.generation;
      expect(await signal(victim, 'SIGKILL')).toBe(-1);
      const mark = alice.sent.length;
      const results: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await call(alice.client, i % 2 ? 'whoami' : 'notes_add', i % 2 ? {} : { title: `after kill ${i}`, body: 'still here' }).catch((e: unknown) => {
          throw new Error(`call ${i} after the kill: ${String(e)}\n${failureContext()}`);
        });
        results.push(i % 2 ? r.sub : r.title);
      }
      expect(results).toEqual(['after kill 0', people[0]!.sub, 'after kill 2', people[0]!.sub, 'after kill 4', people[0]!.sub]);
      const listed = await call(alice.client, 'notes_list');
      expect((listed.notes as { title: string }[]).map((n) => n.title)).toEqual(expect.arrayContaining(['after kill 0', 'after kill 2', 'after kill 4', 'alice 0']));
      const posted = alice.sent.slice(mark).filter((p) => p.path === '/mcp' && p.httpMethod === 'POST');
      await waitFor('every call after the kill logged', () => (posted.every((p) => servedBy(p.id).length > 0) ? true : undefined), 5000, failureContext).catch(() => {});
      const after = placements(alice, mark).filter((p) => p.path === '/mcp' && p.httpMethod === 'POST');
      const where = after.map((p) => p.served.map((s) => `r${s.slot}.${s.gen}:${s.status}`).join('+'));
      console.log(`[replicas] killed r${victim.index}; the next calls went to ${where.join(' ')}`);
      for (const p of after) {
        expect(p.served, `${p.id} served once, by a live replica`).toHaveLength(1);
        expect(p.served[0]!.slot === victim.index && p.served[0]!.gen === killedGen).toBe(false);
        expect(p.served[0]!.status).toBeLessThan(300);
      }
      expect(new Set(after.map((p) => p.served[0]!.slot)).size).toBe(REPLICAS - 1);
      // Back on its port for the rolling restart.
      await startReplica(victim);
    });
  }, 90_000);

  it('rolling restart of all three (SIGTERM one at a time) under 10 clients: 0 failed calls, every acknowledged note stored once', async () => {
    const load = await phase(`3a. ${LOAD_CLIENTS} more people through the OAuth flow`, async () => {
      // One after another: Hydra's in-memory store is not built for concurrent writes.
      const sessions: Session[] = [];
      for (let i = 1; i <= LOAD_CLIENTS; i++) sessions.push(await connectThroughCaddy(people[i]!, `load${i}`));
      return sessions;
    });

    await phase('3b. rolling restart under load', async () => {
      let running = true;
      const acknowledged: { sub: string; id: string; title: string }[] = [];
      const failures: string[] = [];
      let calls = 0;
      const loops = load.map(async (s, u) => {
        for (let n = 0; running; n++) {
          const title = `load${u + 1}-${n}`;
          try {
            calls++;
            const note = await call(s.client, 'notes_add', { title, body: 'rolling' });
            acknowledged.push({ sub: s.person.sub, id: note.id, title });
            calls++;
            // Read your write, wherever this call lands.
            const listed = await call(s.client, 'notes_list', { limit: 5 });
            if (!(listed.notes as { id: string }[]).some((x) => x.id === note.id)) failures.push(`${title}: acknowledged but not listed`);
          } catch (e) {
            failures.push(`${title}: ${String(e)}`);
          }
        }
      });
      const servedByGen = (slot: Slot, gen: number) => slot.lines.some((l) => l.gen === gen && l.msg === 'request' && l.method === 'POST' && l.request_id?.startsWith('load'));
      try {
        // Load on all three before the first stop.
        await waitFor('load on every replica', () => (slots.every((s) => servedByGen(s, s.generation)) ? true : undefined), 30_000, failureContext);
        for (const slot of slots) {
          const t0 = performance.now();
          const code = await signal(slot, 'SIGTERM');
          const stopped = performance.now();
          expect(code, `r${slot.index} exits 0 after SIGTERM`).toBe(0);
          await startReplica(slot);
          const ready = performance.now();
          // Back in Caddy's rotation: a load request reached the new process.
          await waitFor(`r${slot.index} back in rotation`, () => (servedByGen(slot, slot.generation) ? true : undefined), 30_000, failureContext);
          console.log(
            `[replicas] r${slot.index}: stopped in ${((stopped - t0) / 1000).toFixed(1)} s, ready ${((ready - stopped) / 1000).toFixed(1)} s later, serving ${((performance.now() - ready) / 1000).toFixed(1)} s after that; ${calls} calls so far, ${failures.length} failed`,
          );
        }
      } finally {
        running = false;
        await Promise.all(loops);
      }
      console.log(`[replicas] ${calls} calls by ${LOAD_CLIENTS} clients, ${acknowledged.length} notes acknowledged, ${failures.length} failed`);
      expect(failures, failures.slice(0, 10).join('\n') + '\n' + failureContext()).toEqual([]);
      const rows = await db!.selectFrom('notes').select(['id', 'sub', 'title']).where('title', 'like', 'load%').execute();
      const byKey = new Map<string, string[]>();
      for (const r of rows) byKey.set(`${r.sub} ${r.title}`, [...(byKey.get(`${r.sub} ${r.title}`) ?? []), r.id]);
      for (const note of acknowledged) expect(byKey.get(`${note.sub} ${note.title}`), `note ${note.title} stored exactly once`).toEqual([note.id]);
      expect(rows.length, 'no note stored that was not acknowledged').toBe(acknowledged.length);
      for (const s of load) expect(s.transportErrors.filter((e) => !/SSE stream disconnected|terminated|fetch failed|other side closed/i.test(e))).toEqual([]);
    });
    await Promise.all(load.map((s) => s.client.close()));
  }, 180_000);

  it("another person's token with the session id, on every replica (none of them opened it): 404", async () => {
    await phase("4. another person's token on another replica", async () => {
      const sessionId = alice.transport.sessionId!;
      const otherToken = (await connectThroughCaddy(people[1]!, 'mallory')).oauth.tokens()!.access_token;
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
      const headers = (token: string) => ({
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': alice.transport.protocolVersion ?? '2025-11-25',
        // The public host, as Caddy sends it.
        host: new URL(base).host,
      });
      // Every replica is a fresh process since the rolling restart: none holds the session in memory.
      for (const s of slots) {
        expect(await postStatus(s.port, headers(otherToken), body), `r${s.index}`).toBe(404);
      }
      const { host: _publicHost, ...throughCaddy } = headers(otherToken);
      const viaCaddy = await fetch(mcpUrl, { method: 'POST', headers: throughCaddy, body });
      expect(viaCaddy.status).toBe(404);
      // And still the owner's, on whichever replica.
      expect(await call(alice.client, 'whoami')).toMatchObject({ sub: people[0]!.sub });
    });
  }, 60_000);
});
