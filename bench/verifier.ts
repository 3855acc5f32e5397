/**
 * What token checks cost, against the real Ory Hydra, as ratios to an
 * unauthenticated request measured in the same run (absolute times on a
 * shared machine are noise; ratios are the result). Not a test: run with
 * `npm run bench`.
 *
 * Each authenticated request carries a valid token and a body that fails
 * right after authentication (no session), so it measures the check itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAs } from '../test/e2e/flow.js';
import { type Stack, startStack } from '../test/e2e/stack.js';

const N = Number(process.env.BENCH_REQUESTS ?? 400);
const WARMUP = 50;

const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const headers = (token?: string) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

/** Median microseconds per request over N sequential requests (after a warm-up). */
async function measure(url: URL, token: string | undefined, expectStatus: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < N + WARMUP; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { method: 'POST', headers: headers(token), body });
    await res.arrayBuffer();
    const dt = Number(process.hrtime.bigint() - t0) / 1000;
    if (res.status !== expectStatus) throw new Error(`expected ${expectStatus}, got ${res.status}`);
    if (i >= WARMUP) times.push(dt);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function tokenFor(stack: Stack): Promise<string> {
  const user = await stack.addUser(`bench-${Date.now()}@example.com`, 'bench password 1');
  const { oauth, close } = await connectAs(stack, user);
  await close();
  return oauth.tokens()!.access_token;
}

async function main() {
  const stacks: Stack[] = [];
  try {
    const jwt = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', introspectionCacheSeconds: 60 });
    stacks.push(jwt);
    const jwtCold = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', introspectionCacheSeconds: 0 });
    stacks.push(jwtCold);
    const cached = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', introspectionCacheSeconds: 60 });
    stacks.push(cached);
    const cold = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite', introspectionCacheSeconds: 0 });
    stacks.push(cold);
    const tokens = { jwt: await tokenFor(jwt), jwtCold: await tokenFor(jwtCold), cached: await tokenFor(cached), cold: await tokenFor(cold) };
    await sleep(200);

    // Interleave rounds so drift on a shared machine hits every case alike.
    const rounds = 3;
    const sums = { baseline: 0, jwt: 0, jwtCold: 0, cached: 0, cold: 0 };
    for (let r = 0; r < rounds; r++) {
      sums.baseline += await measure(jwt.mcpUrl, undefined, 401);
      sums.jwt += await measure(jwt.mcpUrl, tokens.jwt, 400);
      sums.jwtCold += await measure(jwtCold.mcpUrl, tokens.jwtCold, 400);
      sums.cached += await measure(cached.mcpUrl, tokens.cached, 400);
      sums.cold += await measure(cold.mcpUrl, tokens.cold, 400);
    }
    const us = (x: number) => x / rounds;
    const base = us(sums.baseline);
    const row = (name: string, v: number) => `| ${name} | ${us(v).toFixed(0)} | ${(us(v) / base).toFixed(2)}× | ${(us(v) - base).toFixed(0)} |`;
    console.log(`\nToken check cost, Ory Hydra ${jwt.hydra.version}, ${N} sequential requests × ${rounds} rounds, median per request\n`);
    console.log('| request | µs | ratio to unauthenticated | added µs |');
    console.log('|---|---|---|---|');
    console.log(row('unauthenticated (401, baseline)', sums.baseline));
    console.log(row('JWT, verified result cached', sums.jwt));
    console.log(row('JWT, signature checked every call (cache 0)', sums.jwtCold));
    console.log(row('opaque token, cached introspection', sums.cached));
    console.log(row('opaque token, cold introspection (cache 0)', sums.cold));
  } finally {
    for (const s of stacks) await s.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
