import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/logger.js';
import type { BusMessage } from '../../../src/mcp/sessionBus.js';
import { PostgresSessionBus } from '../../../src/mcp/postgresSessionBus.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/** The session bus on a real PostgreSQL: LISTEN/NOTIFY between two "replicas" (two buses, two connections). */
describe('PostgresSessionBus', () => {
  let backend: Backend;
  let url: string;
  const buses: PostgresSessionBus[] = [];
  const log = createLogger('silent');

  const received = (bus: PostgresSessionBus) => {
    const got: BusMessage[] = [];
    bus.subscribe((m) => got.push(m));
    return got;
  };
  const until = async (what: string, ok: () => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    backend = await storeBackends('session-bus').postgres();
    if (backend.target.kind !== 'postgres') throw new Error('postgres');
    url = backend.target.url;
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await backend?.cleanup();
  });

  it("delivers a message to the other replica, never back to its sender; a 60 KB message arrives whole (chunked under NOTIFY's 8000-byte limit)", async () => {
    const [a, b] = [await PostgresSessionBus.start(url, log), await PostgresSessionBus.start(url, log)];
    buses.push(a, b);
    const [onA, onB] = [received(a), received(b)];
    const small: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3 } };
    const large: JSONRPCMessage = { jsonrpc: '2.0', id: 1, result: { action: 'accept', content: { text: 'é'.repeat(30_000) } } };
    await a.publish('s1', small);
    await a.publish('s1', large);
    await until('both messages on b', () => onB.length === 2);
    expect(onB).toEqual([
      { session: 's1', from: a.replica, message: small },
      { session: 's1', from: a.replica, message: large },
    ]);
    await new Promise((r) => setTimeout(r, 100));
    expect(onA, 'no echo').toEqual([]);
  });

  it('a NOTIFY from elsewhere on the channel that is not ours is ignored', async () => {
    const b = await PostgresSessionBus.start(url, log);
    buses.push(b);
    const onB = received(b);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`SELECT pg_notify('hydra_mcp_sessions', 'not json'), pg_notify('hydra_mcp_sessions', '{"f":"x","c":"y","i":5,"n":2,"d":"AA"}')`);
    await c.end();
    const a = await PostgresSessionBus.start(url, log);
    buses.push(a);
    await a.publish('s2', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    await until('the real message', () => onB.length === 1);
    expect(onB[0]!.session).toBe('s2');
  });

  it('listens again by itself after its connection is killed, and says so', async () => {
    const lines: Record<string, unknown>[] = [];
    const b = await PostgresSessionBus.start(url, createLogger('info', (line) => void lines.push(JSON.parse(line) as Record<string, unknown>)));
    const a = await PostgresSessionBus.start(url, log);
    buses.push(a, b);
    const onB = received(b);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    // The listening connection is the one that ran LISTEN.
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database() AND pid <> pg_backend_pid()`);
    await admin.end();
    await until('listening again', () => lines.some((l) => l.msg === 'session bus: listening again'), 15_000);
    expect(lines.some((l) => String(l.msg).startsWith('session bus: listening connection lost'))).toBe(true);
    await a.publish('s3', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } });
    await until('delivered after the reconnect', () => onB.some((m) => m.session === 's3'));
  });
});
