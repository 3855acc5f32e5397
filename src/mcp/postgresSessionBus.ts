import { randomUUID } from 'node:crypto';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';
import pg from 'pg';
import type { Logger } from '../log/logger.js';
import type { BusMessage, SessionBus } from './sessionBus.js';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more (default build). */
const MAX_PAYLOAD_BYTES = 7900;
/** Bytes of a large message per chunk (base64 grows them by a third). */
const CHUNK_BYTES = 5000;
/** A chunked message not complete by then is dropped (its transaction's notifications arrive together). */
const CHUNK_WAIT_MS = 10_000;

type Whole = { f: string; s: string; m: JSONRPCMessage };
type Chunk = { f: string; c: string; i: number; n: number; d: string };

/**
 * The session bus between replicas over PostgreSQL `LISTEN`/`NOTIFY`: one
 * listening connection per process, publishing through a small pool. NOTIFY
 * is delivered to every listener once the publishing transaction commits, in
 * commit order; a payload too large for one NOTIFY is sent as chunks in one
 * transaction and put back together here.
 *
 * While the listening connection is down (a database restart) messages for
 * this replica are missed: a call waiting for its client's answer waits out
 * its own timeout, as it would had the answer never come. It reconnects by
 * itself, and says so in the log.
 */
export class PostgresSessionBus implements SessionBus {
  readonly replica = randomUUID();
  private readonly listeners = new Set<(m: BusMessage) => void>();
  private readonly chunks = new Map<string, { parts: string[]; got: number; timer: NodeJS.Timeout }>();
  private readonly pool: pg.Pool;
  private listener: pg.Client | undefined;
  private closed = false;
  private retryMs = 500;

  private constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly channel: string,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
    this.pool.on('error', () => {});
  }

  /** Connect and LISTEN; resolves once this replica receives. */
  static async start(url: string, log: Logger, channel = 'hydra_mcp_sessions'): Promise<PostgresSessionBus> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new TypeError(`PostgresSessionBus: channel must be a plain identifier, got ${JSON.stringify(channel)}`);
    const bus = new PostgresSessionBus(url, log, channel);
    await bus.listen();
    return bus;
  }

  async publish(session: string, message: JSONRPCMessage): Promise<void> {
    const whole = JSON.stringify({ f: this.replica, s: session, m: message } satisfies Whole);
    if (Buffer.byteLength(whole) <= MAX_PAYLOAD_BYTES) {
      await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, whole]);
      return;
    }
    const bytes = Buffer.from(JSON.stringify({ s: session, m: message }));
    const n = Math.ceil(bytes.length / CHUNK_BYTES);
    const c = randomUUID();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      for (let i = 0; i < n; i++) {
        const d = bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES).toString('base64');
        await client.query('SELECT pg_notify($1, $2)', [this.channel, JSON.stringify({ f: this.replica, c, i, n, d } satisfies Chunk)]);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  subscribe(listener: (m: BusMessage) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (const { timer } of this.chunks.values()) clearTimeout(timer);
    this.chunks.clear();
    await this.listener?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    client.on('notification', (n) => {
      if (n.channel === this.channel && n.payload) this.receive(n.payload);
    });
    let lost = false;
    const onLost = (why: unknown) => {
      if (lost || this.closed) return;
      lost = true;
      this.listener = undefined;
      void client.end().catch(() => {});
      this.log.warn('session bus: listening connection lost; reconnecting (messages for this replica are missed meanwhile)', { error: why });
      this.reconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost('connection ended'));
    await client.connect();
    await client.query(`LISTEN ${this.channel}`);
    this.listener = client;
    this.retryMs = 500;
  }

  private reconnect(): void {
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
    setTimeout(() => {
      if (this.closed) return;
      this.listen().then(
        () => this.log.info('session bus: listening again'),
        () => this.reconnect(),
      );
    }, wait).unref();
  }

  private receive(payload: string): void {
    let parsed: Partial<Whole & Chunk>;
    try {
      parsed = JSON.parse(payload) as Partial<Whole & Chunk>;
    } catch {
      return;
    }
    if (parsed.f === this.replica || typeof parsed.f !== 'string') return;
    if (typeof parsed.s === 'string' && parsed.m) return this.deliver({ session: parsed.s, from: parsed.f, message: parsed.m });
    const { c, i, n, d } = parsed;
    if (typeof c !== 'string' || !Number.isSafeInteger(i) || !Number.isSafeInteger(n) || typeof d !== 'string' || n! < 1 || i! < 0 || i! >= n!) return;
    let entry = this.chunks.get(c);
    if (!entry) {
      entry = { parts: new Array<string>(n!), got: 0, timer: setTimeout(() => this.chunks.delete(c), CHUNK_WAIT_MS).unref() };
      this.chunks.set(c, entry);
    }
    if (entry.parts[i!] === undefined) {
      entry.parts[i!] = d;
      entry.got++;
    }
    if (entry.got < n!) return;
    clearTimeout(entry.timer);
    this.chunks.delete(c);
    try {
      const whole = JSON.parse(Buffer.concat(entry.parts.map((p) => Buffer.from(p, 'base64'))).toString()) as { s: string; m: JSONRPCMessage };
      this.deliver({ session: whole.s, from: parsed.f, message: whole.m });
    } catch {
      // A torn message is dropped, as a missed one.
    }
  }

  private deliver(m: BusMessage): void {
    for (const l of [...this.listeners]) {
      try {
        l(m);
      } catch (e) {
        this.log.warn('session bus: a listener failed', { error: e });
      }
    }
  }
}
