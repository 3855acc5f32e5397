import { inParallel } from './hydraTokens.js';
import { headersFor, openSession } from './load.js';
import type { MemoryPoint, MemoryResult } from './results.js';
import type { BenchServer } from './servers.js';

const MiB = 1024 * 1024;

async function point(server: BenchServer, label: string, entries: () => Promise<number>): Promise<MemoryPoint> {
  const m = await server.memory();
  return { label, rssMiB: m.rss / MiB, heapUsedMiB: m.heapUsed / MiB, entries: await entries() };
}

/** Each token once, through the whole stack (a tools/list, so the tool layer is not what we measure). */
async function presentEach(server: BenchServer, tokens: string[]): Promise<void> {
  await inParallel(tokens.length, 8, async (i) => {
    const res = await fetch(server.mcpUrl, {
      method: 'POST',
      headers: headersFor({ url: server.mcpUrl, token: tokens[i]! }),
      body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/list' }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${server.name}: token ${i} answered ${res.status}`);
  });
}

/**
 * RSS of one server before any token, after `batches[0]` distinct tokens and
 * after `batches[1]` more: the verifier caches are bounded, so the second
 * batch must not grow memory the way the first did.
 */
export async function tokenMemory(
  server: BenchServer,
  kind: 'jwt' | 'opaque',
  bound: number,
  batches: [string[], string[]],
): Promise<MemoryResult['tokens'][number]> {
  const cache = kind === 'jwt' ? 'jwt' : 'introspection';
  const entries = () => server.metric('token_cache_entries', { cache });
  const points = [await point(server, 'before any token', entries)];
  await presentEach(server, batches[0]);
  points.push(await point(server, `${batches[0].length.toLocaleString('en-US')} distinct tokens`, entries));
  await presentEach(server, batches[1]);
  const total = batches[0].length + batches[1].length;
  points.push(await point(server, `${total.toLocaleString('en-US')} distinct tokens`, entries));
  return { kind, bound, points };
}

/**
 * RSS of a stateful server before any session, with `perUser` sessions for
 * each of the first users (up to the registry's bound), and after every
 * other user also tried to open `perUser`: those must be refused.
 */
export async function sessionMemory(server: BenchServer, tokens: string[], perUser: number, bound: number): Promise<MemoryResult['sessions']> {
  const entries = () => server.metric('mcp_sessions_active', { transport: 'streamable-http' });
  const points = [await point(server, 'no sessions', entries)];
  const fill = tokens.slice(0, Math.ceil(bound / perUser));
  const rest = tokens.slice(fill.length);
  const open = async (users: string[]) => {
    let refused = 0;
    await inParallel(users.length * perUser, 8, async (i) => {
      const { status } = await openSession(server.mcpUrl, users[Math.floor(i / perUser)]!);
      if (status === 503) refused++;
      else if (status !== 200) throw new Error(`${server.name}: initialize answered ${status}`);
    });
    return refused;
  };
  const refusedWhileFilling = await open(fill);
  if (refusedWhileFilling > 0) throw new Error(`${server.name}: ${refusedWhileFilling} sessions refused below the bound`);
  points.push(await point(server, `${(fill.length * perUser).toLocaleString('en-US')} sessions (${fill.length} users × ${perUser})`, entries));
  const refused = await open(rest);
  points.push(await point(server, `then ${rest.length * perUser} more attempts by ${rest.length} other users`, entries));
  return { bound, refused, points };
}
