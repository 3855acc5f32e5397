import { randomFillSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { v7 as uuidv7 } from 'uuid';
import type { Logger } from '../log/logger.js';
import type { AuditEvent, AuditStore } from '../store/auditStore.js';

// uuid asks crypto.getRandomValues for each id (10 µs a call here); ids take their random bytes from a pool instead (1 µs),
// copied into one reused array (uuid reads it before returning; a view per id was an allocation per call) by a
// plain loop (Buffer#copy is a call into C++ for 16 bytes).
const entropy = new Uint8Array(4096);
let entropyAt = entropy.length;
const idRandom = new Uint8Array(16);
const random16 = (): Uint8Array => {
  if (entropyAt + 16 > entropy.length) {
    randomFillSync(entropy);
    entropyAt = 0;
  }
  for (let i = 0; i < 16; i++) idRandom[i] = entropy[entropyAt++]!;
  return idRandom;
};

/** An event as hooks report it: the writer stamps the id and (unless given) the time. */
export type AuditInput = Omit<AuditEvent, 'id' | 'at'> & { at?: string };

export interface AuditWriterOptions {
  /**
   * Where batches go. With `retryable`, a batch whose insert fails with an
   * error it accepts is tried again (the insert must then skip records it
   * already stored: src/store/auditStore.ts auditInserter); without, every
   * failure loses the batch.
   */
  store: Pick<AuditStore, 'insertMany'> & { retryable?(error: unknown): boolean };
  log: Logger;
  /** Most events held in memory; further ones are dropped (and counted) until a flush makes room. Default 10 000. */
  maxQueue?: number;
  /** Events per insert; a full batch is written at once instead of waiting for the timer. Default 200. */
  batchSize?: number;
  /** How often a partial batch is written, in ms. Default 1000. */
  flushIntervalMs?: number;
  /** How long a batch is tried again after a retryable failure, in ms, before it counts as lost; also how long stop() goes on trying. Default 10 000. */
  retryForMs?: number;
  /** Hydra's client name for a client id (cached by the caller); asked at write time, off the request path. */
  clientName?: (clientId: string) => Promise<string | undefined>;
  /** Told of events written, events lost to a failed write, events of a batch to be tried again, and events dropped because the queue was full. */
  onWritten?: (n: number) => void;
  onFailed?: (n: number) => void;
  onRetried?: (n: number) => void;
  onDropped?: () => void;
  now?: () => Date;
}

/**
 * The audit trail's writer: hooks call `record()` (synchronous, never
 * throws, never waits for the database); events are written in batches by
 * size or every `flushIntervalMs`. The queue is bounded so a flood or a slow
 * database costs at most `maxQueue` events of memory. A write that fails for
 * a passing reason (the file locked by another process, a lost connection)
 * is tried again, with backoff, for up to `retryForMs`, batches keeping
 * their order; other failures, and one that outlasts that, lose the batch:
 * counted and logged (never with the events' contents). The calls that
 * produced the events are never affected.
 */
export class AuditWriter {
  private queue: AuditEvent[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private kick: NodeJS.Immediate | undefined;
  private stopped = false;
  private readonly maxQueue: number;
  private readonly batchSize: number;
  private readonly retryForMs: number;
  // Past this (performance.now()), a failed batch is not tried again: set by stop().
  private giveUpAt = Infinity;
  private readonly now: (() => Date) | undefined;
  // The last stamp, reused within its millisecond: toISOString costs about a microsecond, and a
  // tool call that uses a connected account records twice in the same millisecond.
  private stampedMs = -1;
  private stamp = '';

  constructor(private readonly options: AuditWriterOptions) {
    this.maxQueue = options.maxQueue ?? 10_000;
    this.batchSize = options.batchSize ?? 200;
    this.retryForMs = options.retryForMs ?? 10_000;
    const interval = options.flushIntervalMs ?? 1000;
    for (const [name, v] of [['maxQueue', this.maxQueue], ['batchSize', this.batchSize], ['flushIntervalMs', interval], ['retryForMs', this.retryForMs]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`AuditWriter: ${name} must be a positive integer`);
    }
    this.now = options.now;
    this.timer = setInterval(() => void this.write(false), interval);
    // The audit timer alone never keeps a process alive.
    this.timer.unref();
  }

  /**
   * Queue one event; returns at once. After stop(), events are dropped. The
   * writer takes the object: it is stamped with its id and time in place, not
   * copied (this runs for every tool call).
   */
  record(input: AuditInput): void {
    if (this.stopped || this.queue.length >= this.maxQueue) {
      this.options.onDropped?.();
      return;
    }
    const event = input as AuditEvent;
    // Time-ordered ids (RFC 9562 v7): new records land at the end of the primary-key index, not all over it (inserts 2× cheaper).
    event.id = uuidv7({ random: random16() });
    event.at = input.at ?? this.at();
    this.queue.push(event);
    if (this.queue.length >= this.batchSize && !this.kick) {
      this.kick = setImmediate(() => {
        this.kick = undefined;
        void this.write(false);
      });
    }
  }

  /** Now, ISO-8601 UTC with milliseconds. */
  private at(): string {
    if (this.now) return this.now().toISOString();
    const ms = Date.now();
    if (ms !== this.stampedMs) {
      this.stampedMs = ms;
      this.stamp = new Date(ms).toISOString();
    }
    return this.stamp;
  }

  /** Events waiting to be written. */
  get queued(): number {
    return this.queue.length;
  }

  /** Write everything queued now, one batch after another (one flush at a time). Never rejects. */
  async flush(): Promise<void> {
    // A flush under way may stop short of the events queued during it (see write).
    await this.flushing;
    await this.write(true);
  }

  /**
   * One batch now, then more only while full ones wait (`all`: until the queue
   * is empty). An insert that answers later (SQLite's yields between its
   * transactions; PostgreSQL's crosses the network) would
   * otherwise be followed at once by the few events queued meanwhile, and a
   * stream of tiny batches costs far more per event than full ones.
   */
  private write(all: boolean): Promise<void> {
    this.flushing ??= this.drain(all).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stop taking events, then write what is queued (for shutdown), trying failed batches again for at most `retryForMs` in all. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.giveUpAt = Math.min(this.giveUpAt, performance.now() + this.retryForMs);
    clearInterval(this.timer);
    if (this.kick) clearImmediate(this.kick);
    await this.flush();
  }

  private async drain(all: boolean): Promise<void> {
    for (let first = true; this.queue.length >= (all || first ? 1 : this.batchSize); first = false) {
      const batch = this.queue.splice(0, this.batchSize);
      await this.nameClients(batch);
      await this.insert(batch);
    }
  }

  /** One batch, tried again after a retryable failure (25 ms, doubling, at most 1 s apart) until `retryForMs` has passed. */
  private async insert(batch: AuditEvent[]): Promise<void> {
    const { store, log } = this.options;
    const giveUpAt = performance.now() + this.retryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await store.insertMany(batch);
        this.options.onWritten?.(batch.length);
        return;
      } catch (e) {
        // The code or name only: a driver's message can quote the statement's values.
        const error = errorName(e);
        const delay = Math.min(25 * 2 ** (attempt - 1), 1000);
        if (!store.retryable?.(e) || performance.now() + delay > Math.min(giveUpAt, this.giveUpAt)) {
          this.options.onFailed?.(batch.length);
          log.error('audit records not written', { events: batch.length, error, attempts: attempt });
          return;
        }
        this.options.onRetried?.(batch.length);
        log.warn('audit records not written yet; trying again', { events: batch.length, error, attempt, retry_in_ms: delay });
        await sleep(delay, undefined, { ref: false });
      }
    }
  }

  private async nameClients(batch: AuditEvent[]): Promise<void> {
    const lookup = this.options.clientName;
    if (!lookup) return;
    const ids = [...new Set(batch.filter((e) => e.clientId && e.clientName === undefined).map((e) => e.clientId!))];
    const names = new Map(await Promise.all(ids.map(async (id) => [id, await lookup(id).catch(() => undefined)] as const)));
    for (const e of batch) {
      const name = e.clientId ? names.get(e.clientId) : undefined;
      if (name !== undefined && e.clientName === undefined) e.clientName = name;
    }
  }
}

const errorName = (e: unknown): string => {
  if (!(e instanceof Error)) return 'unknown';
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : e.name;
};
