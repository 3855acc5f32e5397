import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, freeLoopbackPort, ourPageUrls, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { auditStall, MIN_STALL_SECONDS } from '../../../bench/auditStall.js';
import { createClient, mintToken } from '../../../bench/hydraTokens.js';
import { callOnce, type Target } from '../../../bench/load.js';
import { type BenchServer, startBenchServer } from '../../../bench/servers.js';

// The bench's audit stall (issue 26 #10) against a real bench server (its own process, audit trail on, limits at their maxima) and a real Hydra's JWTs.
describe('bench audit stall', () => {
  let dir: string;
  let hydra: RunningHydra;
  let server: BenchServer;
  let target: Target;
  const others: { target: Target; sub: string }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-stall-'));
    hydra = await startHydra({
      binary: await ensureHydraBinary(),
      dsn: 'memory',
      accessTokenStrategy: 'jwt',
      ...ourPageUrls('http://127.0.0.1:9'),
      secretsSystem: randomBytes(24).toString('hex'),
      env: { LOG_LEVEL: 'warn', OAUTH2_HASHERS_BCRYPT_COST: '4' },
    });
    server = await startBenchServer('stall-test', 'hydra', {
      HOST: '127.0.0.1',
      PORT: String(await freeLoopbackPort()),
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      DATABASE_PATH: join(dir, 'stall.sqlite'),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
      MCP_STATELESS: 'true',
      AUDIT: 'on',
      MCP_REQUESTS_PER_MINUTE: '60000',
      MCP_BURST: '100000',
      MCP_CLIENT_REQUESTS_PER_MINUTE: '60000',
      MCP_CLIENT_BURST: '100000',
    });
    const client = await createClient(hydra.adminUrl, [server.mcpUrl.href]);
    target = { url: server.mcpUrl, token: await mintToken(hydra.publicUrl, client, server.mcpUrl.href) };
    await callOnce(target, client.clientId);
    for (const name of ['other one', 'other two']) {
      const c = await createClient(hydra.adminUrl, [server.mcpUrl.href], name);
      others.push({ target: { url: server.mcpUrl, token: await mintToken(hydra.publicUrl, c, server.mcpUrl.href) }, sub: c.clientId });
    }
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await hydra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`refuses a load shorter than ${MIN_STALL_SECONDS} s, or nobody to measure, by name, before sending anything`, async () => {
    const before = await server.metric('audit_records_written_total');
    await expect(auditStall(server, target, 2, MIN_STALL_SECONDS - 1, others)).rejects.toThrow(`audit stall: seconds must be a whole number ≥ ${MIN_STALL_SECONDS}, got ${MIN_STALL_SECONDS - 1}`);
    await expect(auditStall(server, target, 2, MIN_STALL_SECONDS, [])).rejects.toThrow('audit stall: needs at least one other person');
    expect(await server.metric('audit_records_written_total')).toBe(before);
  });

  it("loads one token with every call served and audited while other people's paced calls are all answered (their own whoami) and summarised", async () => {
    const s = await auditStall(server, target, 4, MIN_STALL_SECONDS, others);
    expect(s).toMatchObject({ seconds: MIN_STALL_SECONDS, connections: 4, people: 2, errors: 0 });
    // 30 calls each before the load; some each during it (callOnce checks every answer's sub).
    expect(s.quiet.n).toBe(60);
    expect(s.during.n).toBeGreaterThan(2);
    expect(s.rps).toBeGreaterThan(0);
    // Every call of the load and of the other people during it was audited.
    expect(s.auditWritten).toBeGreaterThanOrEqual(Math.floor(s.rps * s.seconds * 0.9) + s.during.n);
    for (const l of [s.quiet, s.during]) {
      expect(l.p50).toBeGreaterThan(0);
      expect(l.p95).toBeGreaterThanOrEqual(l.p50);
      expect(l.p99).toBeGreaterThanOrEqual(l.p95);
      expect(l.max).toBeGreaterThanOrEqual(l.p99);
    }
  }, 60_000);
});
