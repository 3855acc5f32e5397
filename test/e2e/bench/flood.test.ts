import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureHydraBinary, ourPageUrls, freeLoopbackPort, type RunningHydra, startHydra } from '../../../scripts/hydra.js';
import { floodMemory, MIN_FLOOD_SECONDS } from '../../../bench/flood.js';
import { createClient, mintToken } from '../../../bench/hydraTokens.js';
import { callOnce, type Target } from '../../../bench/load.js';
import { floodGrowth } from '../../../bench/report.js';
import { type BenchServer, startBenchServer } from '../../../bench/servers.js';

// The bench's flood against a real bench server (its own process, audit trail on, default limits) and a real Hydra's JWT.
describe('bench flood', () => {
  let dir: string;
  let hydra: RunningHydra;
  let server: BenchServer;
  let target: Target;
  let sub: string;
  let other: { target: Target; sub: string };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-flood-'));
    const front = 'http://127.0.0.1:9';
    hydra = await startHydra({
      binary: await ensureHydraBinary(),
      dsn: 'memory',
      accessTokenStrategy: 'jwt',
      ...ourPageUrls(front),
      secretsSystem: randomBytes(24).toString('hex'),
      env: { LOG_LEVEL: 'warn', OAUTH2_HASHERS_BCRYPT_COST: '4' },
    });
    server = await startBenchServer('flood-test', 'hydra', {
      HOST: '127.0.0.1',
      PORT: String(await freeLoopbackPort()),
      HYDRA_PUBLIC_URL: hydra.publicUrl,
      HYDRA_ADMIN_URL: hydra.adminUrl,
      HYDRA_ISSUER: hydra.issuer,
      DATABASE_PATH: join(dir, 'flood.sqlite'),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
      MCP_STATELESS: 'true',
      AUDIT: 'on',
      // No MCP_REQUESTS_PER_MINUTE: the default limits, 600 a minute with bursts of 60.
    });
    const client = await createClient(hydra.adminUrl, [server.mcpUrl.href]);
    sub = client.clientId;
    target = { url: server.mcpUrl, token: await mintToken(hydra.publicUrl, client, server.mcpUrl.href) };
    const otherClient = await createClient(hydra.adminUrl, [server.mcpUrl.href], 'other person');
    other = { target: { url: server.mcpUrl, token: await mintToken(hydra.publicUrl, otherClient, server.mcpUrl.href) }, sub: otherClient.clientId };
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await hydra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`refuses a flood shorter than ${MIN_FLOOD_SECONDS} s by name, before sending anything`, async () => {
    const before = await server.metric('audit_records_written_total');
    await expect(floodMemory(server, target, 2, MIN_FLOOD_SECONDS - 1)).rejects.toThrow(`flood: seconds must be a whole number ≥ ${MIN_FLOOD_SECONDS}, got ${MIN_FLOOD_SECONDS - 1}`);
    await expect(floodMemory(server, target, 2, 8.5)).rejects.toThrow('flood: seconds must be a whole number');
    expect(await server.metric('audit_records_written_total')).toBe(before);
  });

  it("floods one token past the default limits: the burst and refill answered, the rest 429 and audited, memory sampled four times; another person's calls all answered", async () => {
    await callOnce(target, sub);
    const f = await floodMemory(server, target, 4, MIN_FLOOD_SECONDS, other);
    // Every one of the other person's calls was answered with their own whoami (callOnce checks the sub), 30 before and some during.
    expect(f.otherUser!.quiet.n).toBe(30);
    expect(f.otherUser!.during.n).toBeGreaterThan(10);
    expect(f.otherUser!.during.p50).toBeGreaterThan(0);
    // 600 a minute with bursts of 60: at most 60 + 10 a second (the call above took one), the rest refused.
    expect(f.ok).toBeGreaterThan(0);
    expect(f.ok).toBeLessThanOrEqual(60 + 10 * (MIN_FLOOD_SECONDS + 1));
    expect(f.limited).toBeGreaterThan(f.ok);
    expect(f.other).toBe(0);
    expect(f.audit.failed).toBe(0);
    // Each refusal is an audit record: written by the end, or (on a slow writer) dropped at the full queue.
    expect(f.audit.written + f.audit.dropped).toBeGreaterThan(f.ok);
    expect(f.points.map((p) => p.label)).toEqual(['before the flood (idle)', 'flood, 2 s in', 'flood, 3 s in (middle)', 'flood, 6 s in (end)']);
    for (const p of f.points) {
      expect(p.rssMiB).toBeGreaterThan(10);
      expect(p.heapUsedMiB).toBeGreaterThan(1);
    }
    // Records written so far only grow while the flood runs.
    const written = f.points.map((p) => p.entries);
    expect([...written].sort((a, b) => a - b)).toEqual(written);
    expect(written[3]!).toBeGreaterThan(written[1]!);
    expect(floodGrowth(f)).toMatchObject({ middle: f.points[2], end: f.points[3] });
  }, 60_000);
});
