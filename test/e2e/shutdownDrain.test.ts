import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../../src/config/config.js';
import { auditStore } from '../../src/store/auditStore.js';
import { openDatabase } from '../../src/store/database.js';
import { scopedStoreFor } from '../../src/store/scopedStore.js';
import { defineTool } from '../../src/tools/contract.js';
import { connectAs, type TransportKind } from './flow.js';
import { type Stack, startStack } from './stack.js';

/**
 * A graceful stop with tool calls in flight, on every transport, against the
 * real Hydra and the official SDK client: each call finishes on an open
 * database, is answered where its client still listens, and is audited.
 */

/** A tool that waits until the test lets it go (ignoring cancellation, as a tool mid-write would), then writes to the caller's store. */
function slowWriter() {
  const started = new Map<string, () => void>();
  const starts = new Map<string, Promise<void>>();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const startOf = (label: string) => {
    if (!starts.has(label)) starts.set(label, new Promise<void>((resolve) => started.set(label, resolve)));
    return starts.get(label)!;
  };
  const tool = defineTool({
    name: 'slow_write',
    description: 'Waits for the test, then writes one record.',
    input: { label: z.string() },
    scopes: [],
    handler: async ({ label }, { store }) => {
      void startOf(label);
      started.get(label)!();
      await released;
      await store.records('slow_write').put(label, { done: true });
      return { label };
    },
  });
  return { tool, started: startOf, release: () => release() };
}

/** Resolves when the server says it waits for calls in flight, or when stop() has returned (a stop that does not wait). */
async function stopBegun(stack: Stack, stopping: Promise<void>): Promise<void> {
  const waiting = (async () => {
    while (!stack.logs.some((l) => l.includes('waiting for requests and tool calls in flight'))) await new Promise((r) => setTimeout(r, 20));
  })();
  await Promise.race([stopping, waiting]);
}

async function afterStop(stack: Stack, sub: string) {
  const db = await openDatabase(loadConfig(stack.env).database);
  try {
    const audited = (await auditStore(db).search({ sub, tool: 'slow_write', limit: 10 })).map((e) => `${e.transport} ${e.outcome}`).sort();
    const records = scopedStoreFor(db, sub).records('slow_write');
    const written = Object.fromEntries(await Promise.all(['sse', 'http', 'gone'].map(async (l) => [l, await records.get(l)] as const)));
    return { audited, written };
  } finally {
    await db.destroy();
  }
}

/** Lines that say something ran on a closed database (better-sqlite3, Kysely), or any error. */
const closedDatabaseLines = (stack: Stack) => stack.logs.filter((l) => /not open|destroyed|"level":"error"/i.test(l));

describe('graceful stop with calls in flight (real Ory Hydra, official SDK client)', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('issue 26 #11: a slow call over legacy SSE and one over Streamable HTTP (session) in flight at stop finish on an open database, are answered and audited', async () => {
    const slow = slowWriter();
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', captureLogs: true, extraTools: [slow.tool as never] });
    const user = await stack.addUser('ines@example.com', 'ines password 1');
    const clients = Object.fromEntries(
      await Promise.all((['sse', 'streamable-http'] as TransportKind[]).map(async (t) => [t, (await connectAs(stack!, user, { transport: t })).client] as const)),
    );
    // A bound on the wait for an answer that never comes (an SSE client reconnects rather than give up), not a limit under test.
    const call = (t: TransportKind, label: string) => clients[t]!.callTool({ name: 'slow_write', arguments: { label } }, undefined, { timeout: 20_000 });
    const calls = [call('sse', 'sse'), call('streamable-http', 'http')];
    const answers = Promise.allSettled(calls);
    await Promise.all([slow.started('sse'), slow.started('http')]);

    const stopping = stack.server.stop();
    await stopBegun(stack, stopping);
    slow.release();
    await stopping;

    const [sse, http] = await answers;
    expect(sse).toEqual({ status: 'fulfilled', value: expect.objectContaining({ content: [{ type: 'text', text: '{"label":"sse"}' }] }) });
    expect(http).toEqual({ status: 'fulfilled', value: expect.objectContaining({ content: [{ type: 'text', text: '{"label":"http"}' }] }) });
    const { audited, written } = await afterStop(stack, user.sub);
    expect(written).toEqual({ sse: { done: true }, http: { done: true }, gone: undefined });
    expect(audited).toEqual(['sse ok', 'streamable-http ok']);
    expect(closedDatabaseLines(stack)).toEqual([]);
  }, 120_000);

  it('issue 26 #11: without sessions, a call whose client went away mid-call still finishes before the database closes, and is audited', async () => {
    const slow = slowWriter();
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', captureLogs: true, extraTools: [slow.tool as never], appEnv: async () => ({ MCP_STATELESS: 'true' }) });
    const user = await stack.addUser('jonas@example.com', 'jonas password 1');
    const { client } = await connectAs(stack, user, { transport: 'streamable-http' });
    const call = client.callTool({ name: 'slow_write', arguments: { label: 'gone' } }).catch((e: unknown) => e);
    await slow.started('gone');
    // The client goes away: its request's connection closes while the tool runs on.
    await client.close();
    await call;

    const stopping = stack.server.stop();
    await stopBegun(stack, stopping);
    slow.release();
    await stopping;

    const { audited, written } = await afterStop(stack, user.sub);
    expect(written.gone).toEqual({ done: true });
    expect(audited).toEqual(['streamable-http ok']);
    expect(closedDatabaseLines(stack)).toEqual([]);
  });
});
