import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';
import type { Logger } from '../log/logger.js';
import type { McpStreamEventsStore, StreamEventRow } from '../store/mcpStreamEventsStore.js';
import { RESTORE_REQUEST_ID } from './sessionRestore.js';

export interface StreamEventsOptions {
  store: McpStreamEventsStore;
  log: Logger;
  /** How long written events wait to be stored together (ms). Default 25: a commit per batch costs more than its rows, and a resume here flushes first. */
  flushDelayMs?: number;
  /** Events held for writing at most (a database outage must not fill memory); beyond it the oldest are dropped, and logged. Default 10,000. */
  maxPending?: number;
  /** How long stored events are kept for a client to resume (ms). Default 5 minutes. */
  retainMs?: number;
  /**
   * A resume on a replica not running the call, with nothing new yet, waits
   * for the next event this long at most (ms), looking every `replayPollMs`:
   * the SDK client keeps its place only from a stream that carried an event.
   * Defaults 60,000 (the SDK's request timeout) and 200.
   */
  replayWaitMs?: number;
  replayPollMs?: number;
}

export const DEFAULT_STREAM_EVENTS_RETAIN_MS = 5 * 60_000;

/**
 * What 2025 sessions' SSE streams carry, kept in the shared database so a
 * client that lost a stream resumes it with `Last-Event-ID` on any replica
 * (MCP 2025-06-18 basic/transports, "Resumability and Redelivery"). One per
 * process; `forSession` hands the SDK's transport its `EventStore`.
 *
 * Writes leave the hot path: `storeEvent` names the event at once (the SDK
 * writes it to the client with that id) and the rows are inserted together a
 * few milliseconds later, one batch at a time, in order. A replay in the
 * process running the call sends what is stored and pending, and the SDK goes
 * on live. A replay on another replica sends what is stored after the
 * client's last event, waiting (polling the table) until there is at least
 * one; the SDK then closes that stream (the call is not running there) and
 * the client asks again after the `retry` interval with its new last event,
 * on whichever replica: the SDK's polling pattern, until the answer.
 *
 * No `getStreamIdForEventId`: with it the SDK answers 409 to a resume while
 * it still holds the stream the client lost (a proxy may not have passed the
 * disconnect on yet); without it the resume takes the stream over. The
 * router refuses a Last-Event-ID this class did not make (400) instead.
 *
 * Event ids are `<stream id>.<seq>`: `seq` increases in this process, and a
 * stream is written by one process only (the one running its call; the
 * standalone GET stream carries nothing in this server). Priming events (empty)
 * take a seq but are not stored: replaying "after" them needs only the number.
 */
export class StreamEvents {
  private pending: StreamEventRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stored: Promise<void> = Promise.resolve();
  /** Streams whose call runs in this process (not yet answered). */
  private readonly writing = new Set<string>();
  private closed = false;
  private readonly waitMs: number;
  private readonly pollMs: number;
  private lastSeq = Date.now() * 1000;
  private dropped = 0;
  private readonly flushDelayMs: number;
  private readonly maxPending: number;

  constructor(private readonly options: StreamEventsOptions) {
    this.flushDelayMs = options.flushDelayMs ?? 25;
    this.maxPending = options.maxPending ?? 10_000;
    this.waitMs = options.replayWaitMs ?? 60_000;
    this.pollMs = options.replayPollMs ?? 200;
  }

  /** The SDK `EventStore` of one session; every replay is limited to that session. */
  forSession(sessionId: () => string | undefined, sub: string): EventStore {
    return {
      storeEvent: async (streamId, message) => {
        const seq = this.nextSeq();
        // A stream is being written here until its answer is stored.
        if (isAnswer(message)) this.writing.delete(streamId);
        else this.writing.add(streamId);
        const id = sessionId();
        if (id !== undefined && !isPriming(message) && !isRestore(message)) this.enqueue({ sessionId: id, streamId, seq, sub, message: JSON.stringify(message), createdAt: Date.now() });
        return eventIdOf(streamId, seq);
      },
      replayEventsAfter: async (lastEventId, { send }) => {
        const parsed = parseEventId(lastEventId);
        const id = sessionId();
        if (!parsed || id === undefined) throw new Error('Invalid event ID format');
        const { streamId } = parsed;
        let after = parsed.seq;
        let checkedAnswered = false;
        const deadline = Date.now() + this.waitMs;
        for (;;) {
          await this.flush();
          for (const e of await this.options.store.after(id, streamId, after)) {
            await send(eventIdOf(streamId, e.seq), JSON.parse(e.message) as JSONRPCMessage);
            after = e.seq;
          }
          // Written here since the query (this process runs the call): sent now, before the SDK attaches the live stream.
          for (const p of this.pending.filter((r) => r.sessionId === id && r.streamId === streamId && r.seq > after)) {
            await send(eventIdOf(streamId, p.seq), JSON.parse(p.message) as JSONRPCMessage);
            after = p.seq;
          }
          // The call runs here: the SDK carries on live. Elsewhere: answer once there is something new, or at the deadline.
          if (after > parsed.seq || this.writing.has(streamId) || this.closed || Date.now() >= deadline) return streamId;
          // The client had the answer already (its last event): nothing more will come.
          if (!checkedAnswered) {
            checkedAnswered = true;
            const all = await this.options.store.after(id, streamId, 0);
            if (all.some((e) => e.seq <= parsed.seq && isAnswer(JSON.parse(e.message) as JSONRPCMessage))) return streamId;
          }
          await sleep(this.pollMs);
        }
      },
    };
  }

  /** Write everything pending now (a replay, shutdown); resolves once stored (or its failure logged). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.pending;
    this.pending = [];
    // One batch at a time: a later batch never lands before an earlier one.
    this.stored = this.stored.then(async () => {
      if (!batch.length) return;
      try {
        await this.options.store.append(batch);
      } catch (e) {
        this.options.log.warn('stream events not stored: a client resuming a stream may miss them', { events: batch.length, error: e });
      }
    });
    return this.stored;
  }

  /** Stop waiting replays and write what is pending (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private enqueue(row: StreamEventRow): void {
    this.pending.push(row);
    if (this.pending.length > this.maxPending) {
      this.pending.shift();
      if (this.dropped++ % 1000 === 0) this.options.log.warn('stream events dropped: the database is not keeping up', { dropped: this.dropped });
    }
    if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.flushDelayMs);
  }

  /** Forget what these sessions' streams carried (they ended: DELETE, eviction, idle expiry), here and in the store. */
  async forgetSessions(ids: readonly string[]): Promise<void> {
    if (!ids.length) return;
    const gone = new Set(ids);
    this.pending = this.pending.filter((r) => !gone.has(r.sessionId));
    // A batch being written now would land after the delete.
    await this.stored;
    await this.options.store.removeSessions(ids);
  }

  /** Forget everything of `sub`'s sessions (their account was removed), here and in the store. */
  async forgetOwnedBy(sub: string): Promise<void> {
    this.pending = this.pending.filter((r) => r.sub !== sub);
    await this.stored;
    await this.options.store.removeOwnedBy(sub);
  }

  /** Delete events older than the retention (every replica's sweep; the work is idempotent). */
  async sweep(now = Date.now()): Promise<number> {
    return this.options.store.removeOlderThan(now - (this.options.retainMs ?? DEFAULT_STREAM_EVENTS_RETAIN_MS));
  }

  private nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, Date.now() * 1000);
    return this.lastSeq;
  }
}

const isAnswer = (message: JSONRPCMessage) => 'id' in message && ('result' in message || 'error' in message);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isPriming = (message: JSONRPCMessage) => Object.keys(message).length === 0;
/** The answer to a rebuild's replayed initialize (./sessionRestore.ts) goes to no client. */
const isRestore = (message: JSONRPCMessage) => (message as { id?: unknown }).id === RESTORE_REQUEST_ID;
const eventIdOf = (streamId: string, seq: number) => `${streamId}.${seq}`;

/** `<stream id>.<seq>` as this class makes them; anything else is refused (the SDK answers 400). */
export function parseEventId(eventId: string): { streamId: string; seq: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,64})\.(\d{1,16})$/.exec(eventId);
  if (!m) return undefined;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { streamId: m[1]!, seq } : undefined;
}
