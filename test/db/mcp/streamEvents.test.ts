import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/logger.js';
import { parseEventId, StreamEvents } from '../../../src/mcp/streamEvents.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { inMemoryStreamEventsStore, type McpStreamEventsStore, mcpStreamEventsStore } from '../../../src/store/mcpStreamEventsStore.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/** The shared stream log behind Last-Event-ID resumes (src/mcp/streamEvents.ts), on both databases. */
const backends = storeBackends('stream-events');
const log = createLogger('silent');
const progress = (n: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: n } });
const result: JSONRPCMessage = { jsonrpc: '2.0', id: 1, result: { content: [] } };

// The shared table on both databases (PostgreSQL's is what replicas share), and the in-memory log the app keeps on SQLite.
describe.each(['sqlite', 'postgres', 'memory'] as const)('StreamEvents on %s', (kind) => {
  let backend: Backend | undefined;
  let db: Db | undefined;
  let eventLog: McpStreamEventsStore;
  beforeAll(async () => {
    if (kind === 'memory') {
      eventLog = inMemoryStreamEventsStore();
      return;
    }
    backend = await backends[kind]();
    db = await openDatabase(backend.target);
    eventLog = mcpStreamEventsStore(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await backend?.cleanup();
  });

  const replay = async (events: StreamEvents, session: string, lastEventId: string) => {
    const got: [string, JSONRPCMessage][] = [];
    const stream = await events.forSession(() => session, 'alice').replayEventsAfter(lastEventId, { send: async (id, m) => void got.push([id, m]) });
    return { stream, got };
  };

  it('names each event at once, stores all but the empty priming event, and replays after any id in order', async () => {
    const here = new StreamEvents({ store: eventLog, log });
    const store = here.forSession(() => 's1', 'alice');
    const priming = await store.storeEvent('stream-a', {} as JSONRPCMessage);
    const ids = [await store.storeEvent('stream-a', progress(1)), await store.storeEvent('stream-a', progress(2)), await store.storeEvent('stream-a', result)];
    await store.storeEvent('stream-b', progress(9));
    expect(parseEventId(priming)).toMatchObject({ streamId: 'stream-a' });
    // Another replica (its own StreamEvents) sees what this one stored once it is written.
    await here.flush();
    const elsewhere = new StreamEvents({ store: eventLog, log });
    const all = await replay(elsewhere, 's1', priming);
    expect(all.stream).toBe('stream-a');
    expect(all.got).toEqual([
      [ids[0], progress(1)],
      [ids[1], progress(2)],
      [ids[2], result],
    ]);
    expect((await replay(elsewhere, 's1', ids[1]!)).got).toEqual([[ids[2], result]]);
    expect(await eventLog.after('s1', 'stream-a', 0), 'the priming event is not a row').toHaveLength(3);
  });

  it('a resume on a replica not running the call waits for the next event, then answers with it', async () => {
    const running = new StreamEvents({ store: eventLog, log });
    const waiting = new StreamEvents({ store: eventLog, log, replayPollMs: 20 });
    const store = running.forSession(() => 's2', 'alice');
    const first = await store.storeEvent('stream-c', progress(1));
    await running.flush();
    const started = Date.now();
    const resumed = replay(waiting, 's2', first);
    await new Promise((r) => setTimeout(r, 300));
    const next = await store.storeEvent('stream-c', progress(2));
    const { got } = await resumed;
    expect(got).toEqual([[next, progress(2)]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('a resume from the answer itself (the stream is complete) answers at once, with nothing', async () => {
    const running = new StreamEvents({ store: eventLog, log });
    const waiting = new StreamEvents({ store: eventLog, log, replayPollMs: 20 });
    const store = running.forSession(() => 's6', 'alice');
    await store.storeEvent('stream-f', progress(1));
    const answered = await store.storeEvent('stream-f', result);
    await running.flush();
    const started = Date.now();
    expect((await replay(waiting, 's6', answered)).got).toEqual([]);
    expect(Date.now() - started, 'no wait for events that cannot come').toBeLessThan(5000);
  });

  it('a resume in the process running the call answers at once, with what is still pending too', async () => {
    const running = new StreamEvents({ store: eventLog, log, flushDelayMs: 60_000 });
    const store = running.forSession(() => 's3', 'alice');
    const first = await store.storeEvent('stream-d', progress(1));
    const second = await store.storeEvent('stream-d', progress(2));
    const { got } = await replay(running, 's3', first);
    expect(got).toEqual([[second, progress(2)]]);
  });

  it("another session's replay of the same event id gets nothing of it (waits out its deadline)", async () => {
    const here = new StreamEvents({ store: eventLog, log, replayWaitMs: 200, replayPollMs: 20 });
    const store = here.forSession(() => 's4', 'alice');
    const first = await store.storeEvent('stream-e', progress(1));
    await store.storeEvent('stream-e', progress(2));
    await here.flush();
    const other = new StreamEvents({ store: eventLog, log, replayWaitMs: 200, replayPollMs: 20 });
    expect((await replay(other, 'someone else', first)).got).toEqual([]);
  });

  it('in memory, the log is bounded by rows and by the size of its messages, the oldest going first', async () => {
    const small = inMemoryStreamEventsStore(3, 1000);
    const row = (seq: number, size: number) => ({ sessionId: 'm', streamId: 's', seq, sub: 'alice', message: 'x'.repeat(size), createdAt: seq });
    await small.append([row(1, 10), row(2, 10), row(3, 10), row(4, 10)]);
    expect((await small.after('m', 's', 0)).map((r) => r.seq)).toEqual([2, 3, 4]);
    await small.append([row(5, 990)]);
    expect((await small.after('m', 's', 0)).map((r) => r.seq), '10 + 990 characters fit the 1,000').toEqual([4, 5]);
  });

  it('refuses event ids it did not make', async () => {
    const store = new StreamEvents({ store: eventLog, log }).forSession(() => 's5', 'alice');
    for (const bad of ['', 'stream', 'stream.', '.1', 'stream.1.2', 'stream.-1', 'a b.1', `${'x'.repeat(65)}.1`, 'stream.99999999999999999']) {
      expect(parseEventId(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(parseEventId('_GET_stream.12')).toEqual({ streamId: '_GET_stream', seq: 12 });
    await expect(store.replayEventsAfter('nope', { send: async () => {} })).rejects.toThrow('Invalid event ID format');
  });

  it('events go with their session (ended, or its person removed), written or still pending, and with age (the sweep)', async () => {
    const here = new StreamEvents({ store: eventLog, log, retainMs: 1000, flushDelayMs: 60_000 });
    for (const s of ['gone', 'kept', 'old']) await here.forSession(() => s, s === 'old' ? 'olga' : 'alice').storeEvent('stream', progress(1));
    await here.flush();
    // One more of each, still pending when they end.
    for (const s of ['gone', 'kept', 'old']) await here.forSession(() => s, s === 'old' ? 'olga' : 'alice').storeEvent('stream', progress(2));
    await here.forgetSessions(['gone']);
    await here.forgetOwnedBy('olga');
    await here.flush();
    expect(await eventLog.after('gone', 'stream', 0)).toEqual([]);
    expect(await eventLog.after('old', 'stream', 0)).toEqual([]);
    expect(await eventLog.after('kept', 'stream', 0)).toHaveLength(2);
    // Earlier tests' events are older: the first sweep may take those, never one written under a second ago.
    await here.sweep(Date.now() + 500);
    expect(await eventLog.after('kept', 'stream', 0)).toHaveLength(2);
    expect(await here.sweep(Date.now() + 1500)).toBeGreaterThanOrEqual(2);
    expect(await eventLog.after('kept', 'stream', 0)).toEqual([]);
  });
});
