import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import type { BusMessage, SessionBus } from '../../src/mcp/sessionBus.js';
import { SessionRelay } from '../../src/mcp/sessionRelay.js';

/**
 * The relay's rules, replica by replica: what a session's copy acts on
 * itself, what it passes on, and what a copy acts on when it comes over the
 * bus. Two relays share a bus that hands each message to the other replica
 * (the PostgreSQL bus itself is tested in test/db/mcp/postgresSessionBus.test.ts,
 * the whole path with the SDK client in test/db/mcp/crossReplica.test.ts).
 */
function linkedBuses(): [SessionBus, SessionBus] {
  const make = (replica: string): SessionBus & { listeners: Set<(m: BusMessage) => void> } => ({
    replica,
    listeners: new Set(),
    async publish(session, message) {
      for (const bus of [a, b]) if (bus !== this) for (const l of bus.listeners) l({ session, from: replica, message });
    },
    subscribe(l) {
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    },
    async close() {},
  });
  const a = make('a');
  const b = make('b');
  return [a, b];
}

/** What the relay touches of a transport: its session id, onmessage (the server's) and send. */
function fakeTransport(sessionId: string) {
  const delivered: JSONRPCMessage[] = [];
  const sent: JSONRPCMessage[] = [];
  const closed: unknown[] = [];
  const t = {
    sessionId,
    onmessage: (m: JSONRPCMessage) => void delivered.push(m),
    send: async (m: JSONRPCMessage) => void sent.push(m),
    closeSSEStream: (id: unknown) => void closed.push(id),
  };
  return { t: t as unknown as NodeStreamableHTTPServerTransport, delivered, sent, closed };
}

const log = createLogger('silent');
const flush = () => new Promise((r) => setTimeout(r, 0));
const elicit = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, method: 'elicitation/create', params: { mode: 'url', message: 'connect', url: 'https://example.com', elicitationId: 'e' } });
const answer = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { action: 'accept' } });
const call = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'long_task', arguments: {} } });
const cancel = (requestId: number): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId } });

describe('SessionRelay', () => {
  it("an answer to A's elicitation that reaches B is handed to A's server, not B's", async () => {
    const [busA, busB] = linkedBuses();
    const [ra, rb] = [new SessionRelay(busA, log), new SessionRelay(busB, log)];
    const onA = fakeTransport('s1');
    const onB = fakeTransport('s1');
    ra.attach(onA.t);
    rb.attach(onB.t);
    onA.t.onmessage!(call(1));
    await onA.t.send(elicit(0));
    onB.t.onmessage!(answer(0));
    await flush();
    expect(onB.delivered).toEqual([]);
    expect(onA.delivered).toEqual([call(1), answer(0)]);
    // Only once: a second copy of the answer finds nothing awaiting it.
    onB.t.onmessage!(answer(0));
    await flush();
    expect(onA.delivered).toHaveLength(2);
  });

  it("an answer for a request nobody awaits, or for another session, is delivered nowhere", async () => {
    const [busA, busB] = linkedBuses();
    const [ra, rb] = [new SessionRelay(busA, log), new SessionRelay(busB, log)];
    const onA = fakeTransport('s1');
    const other = fakeTransport('s2');
    const onB = fakeTransport('s2');
    ra.attach(onA.t);
    ra.attach(other.t);
    rb.attach(onB.t);
    await onA.t.send(elicit(5));
    // s2's client answers id 5: s1's request 5 on A must not take it.
    onB.t.onmessage!(answer(5));
    onB.t.onmessage!(answer(6));
    await flush();
    expect(onA.delivered).toEqual([]);
    expect(other.delivered).toEqual([]);
    expect(onB.delivered).toEqual([]);
  });

  it('a cancellation reaching B for a call running on A stops it on A; one for a call B runs stays on B', async () => {
    const [busA, busB] = linkedBuses();
    const [ra, rb] = [new SessionRelay(busA, log), new SessionRelay(busB, log)];
    const onA = fakeTransport('s1');
    const onB = fakeTransport('s1');
    ra.attach(onA.t);
    rb.attach(onB.t);
    onA.t.onmessage!(call(1));
    onB.t.onmessage!(call(2));
    onB.t.onmessage!(cancel(1));
    onB.t.onmessage!(cancel(2));
    await flush();
    expect(onA.delivered).toEqual([call(1), cancel(1)]);
    expect(onB.delivered).toEqual([call(2), cancel(2)]);
    // Each cancelled call's POST stream is closed where it runs, and the call marked answered there.
    const cancelled = (id: number) => ({ jsonrpc: '2.0', id, error: { code: -32800, message: 'Request cancelled' } });
    expect([onA.closed, onA.sent]).toEqual([[1], [cancelled(1)]]);
    expect([onB.closed, onB.sent]).toEqual([[2], [cancelled(2)]]);
    // A call that was answered is no longer running: a late cancellation goes nowhere.
    onA.t.onmessage!(call(3));
    await onA.t.send({ jsonrpc: '2.0', id: 3, result: { content: [] } });
    onB.t.onmessage!(cancel(3));
    await flush();
    expect(onA.delivered).toEqual([call(1), cancel(1), call(3)]);
    expect(onA.closed).toEqual([1]);
  });

  it('requests and other notifications are always served where they land', async () => {
    const [busA, busB] = linkedBuses();
    let published = 0;
    const publish = busB.publish.bind(busB);
    busB.publish = async (s, m) => {
      published++;
      return publish(s, m);
    };
    new SessionRelay(busA, log);
    const onB = fakeTransport('s1');
    new SessionRelay(busB, log).attach(onB.t);
    const ping: JSONRPCMessage = { jsonrpc: '2.0', id: 9, method: 'ping' };
    const initialized: JSONRPCMessage = { jsonrpc: '2.0', method: 'notifications/initialized' };
    onB.t.onmessage!(ping);
    onB.t.onmessage!(initialized);
    expect(onB.delivered).toEqual([ping, initialized]);
    expect(published).toBe(0);
  });
});
