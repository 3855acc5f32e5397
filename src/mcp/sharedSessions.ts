import { randomUUID } from 'node:crypto';
import { NodeStreamableHTTPServerTransport as StreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { EventStore, JSONRPCMessage, McpServer } from '@modelcontextprotocol/server';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import type { McpSessionsStore } from '../store/mcpSessionsStore.js';
import type { SessionRelay } from './sessionRelay.js';
import { restoreInitialized } from './sessionRestore.js';
import { DEFAULT_SESSION_LIMITS, type Lookup, ownerOf, type Session, type SessionLimits, type SessionOwner, SessionRegistry } from './sessions.js';

export interface HttpSession extends Session {
  transport: StreamableHTTPServerTransport;
  /** The protocol revision `initialize` negotiated (undefined before it is answered). */
  protocolVersion(): string | undefined;
}

/** What sessions need of ./streamEvents.ts; `forSession` may keep a session's streams nowhere (the benchmark's in-memory baseline). */
export interface SessionStreams {
  forSession(sessionId: () => string | undefined, sub: string): EventStore | undefined;
  forgetSessions(ids: readonly string[]): Promise<void>;
  forgetOwnedBy(sub: string): Promise<void>;
  close(): Promise<void>;
  sweep(now?: number): Promise<number>;
}

export interface SharedSessionsOptions {
  store: McpSessionsStore;
  /** Builds a fresh MCP server for a session, new or rebuilt. */
  createServer: () => McpServer;
  log: Logger;
  /**
   * How long this replica serves a session it holds from memory before it
   * checks the session's row again (writing its last-seen time in the same
   * statement). It bounds both the writes (one per session per interval,
   * never one per request) and how long a session ended on another replica
   * (DELETE, eviction, idle expiry, removal) may still be served here.
   * Default 5 s.
   */
  revalidateMs?: number;
  /**
   * `maxPerUser` and `idleMs` hold across replicas (the table decides);
   * `maxSessions` bounds this replica's memory.
   */
  limits?: Partial<SessionLimits>;
  /** Told how long each rebuild took (ms). */
  onRebuilt?: (ms: number) => void;
  /** Client messages for a call on another replica (answers, cancellations) are passed on through it (./sessionRelay.ts). */
  relay?: SessionRelay;
  /** Where the sessions' streams are kept for `Last-Event-ID` resumes on any replica (./streamEvents.ts); none: no resuming. */
  streamEvents?: SessionStreams;
  /**
   * The `retry` (ms) a resumable stream tells 2025-11-25 clients: how soon a
   * client whose stream closed (a replay on a replica not running the call
   * closes it) asks again. Default 1,000.
   */
  retryIntervalMs?: number;
}

/** When this replica last saw, checked and wrote a session it holds (epoch ms). */
interface Freshness {
  seenAt: number;
  validatedAt: number;
  flushedAt: number;
}

export const DEFAULT_REVALIDATE_MS = 5_000;

/**
 * The 2025-era Streamable HTTP sessions of one app, shared with every other
 * replica through the database, so no request needs affinity:
 *
 * - `initialize` records the session (owner, negotiated revision, the
 *   client's capabilities and info) before its answer leaves, so the client's
 *   next request finds it on any replica; the person's least recently seen
 *   sessions beyond the cap are deleted there.
 * - A replica asked for a session it does not hold reads the row (one
 *   statement, which also writes last-seen), checks the owner (another
 *   person's id answers 404, as an unknown one), and rebuilds the transport
 *   and server in the initialized state (./sessionRestore.ts).
 * - A session held here is served from memory; every `revalidateMs` a
 *   request checks its row (and writes last-seen): gone means it ended on
 *   another replica, so it is closed here and answered 404.
 * - DELETE, eviction, idle expiry and removal delete the row and what its
 *   streams carried; this replica closes its copy at once, the others on
 *   their next check.
 *
 * Closing a local copy (memory bound, local idle, shutdown) leaves the row:
 * the session lives on, rebuilt wherever its next request lands.
 */
export class SharedSessions {
  private readonly local: SessionRegistry<HttpSession>;
  private readonly freshness = new WeakMap<HttpSession, Freshness>();
  private readonly servers = new WeakMap<HttpSession, McpServer>();
  private readonly rebuilding = new Map<string, Promise<Lookup<HttpSession>>>();
  private readonly limits: Required<SessionLimits>;
  private readonly revalidateMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private lastTick = 0;

  constructor(private readonly options: SharedSessionsOptions) {
    this.limits = { now: Date.now, ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.revalidateMs = options.revalidateMs ?? DEFAULT_REVALIDATE_MS;
    if (!(this.revalidateMs >= 0)) throw new TypeError('SharedSessions: revalidateMs must be a number ≥ 0');
    // The per-person cap is the table's; locally only memory and idleness bound the copies.
    this.local = new SessionRegistry<HttpSession>({ maxSessions: this.limits.maxSessions, maxPerUser: Infinity, idleMs: this.limits.idleMs, now: this.limits.now });
    this.sweeper = setInterval(() => void this.sweep().catch((e: unknown) => options.log.warn('session sweep failed', { error: e })), Math.min(60_000, this.limits.idleMs));
    this.sweeper.unref();
  }

  /** Epoch ms, strictly increasing in this process: two sessions of one replica never tie on recency. */
  private now(): number {
    const t = this.limits.now();
    this.lastTick = t > this.lastTick ? t : this.lastTick + 1;
    return this.lastTick;
  }

  /** Why a new session cannot be opened here now (this replica's memory bound), if it cannot. */
  refusal(principal: Principal): string | undefined {
    return this.local.refusal(principal);
  }

  /** Sessions held by this replica. */
  get size(): number {
    return this.local.size;
  }

  /** The session `id` if held here and `principal` owns it (no database read: for the batch check). */
  heldHere(id: string, principal: Principal): HttpSession | undefined {
    const found = this.local.lookup(id, principal);
    return found.found ? found.session : undefined;
  }

  /** A new session's transport and server, connected; the `initialize` it is handed opens and records it. */
  async open(principal: Principal): Promise<HttpSession> {
    const owner = ownerOf(principal);
    const session = await this.build(owner, () => randomUUID());
    this.recordOnAnswer(session, owner);
    return session;
  }

  /**
   * The session `id` for `principal`: held here (checked against its row at
   * most every `revalidateMs`), or rebuilt from its row. 404 cases are
   * `found: false`, the same for unknown and foreign ids.
   */
  async resolve(id: string, principal: Principal): Promise<Lookup<HttpSession>> {
    const held = this.local.lookup(id, principal);
    if (held.found) return (await this.stillLive(id, held.session)) ? held : { found: false, reason: 'unknown' };
    if (held.reason === 'not_owner') return held;
    let rebuilt = this.rebuilding.get(id);
    if (!rebuilt) {
      rebuilt = this.rebuild(id, principal).finally(() => this.rebuilding.delete(id));
      this.rebuilding.set(id, rebuilt);
    }
    const found = await rebuilt;
    // Concurrent requests share one rebuild: each is checked against its own token.
    if (found.found && !owns(found.session.owner, principal)) return { found: false, reason: 'not_owner' };
    return found;
  }

  /** End every session of `sub` on every replica (their account was removed): here at once, elsewhere at their next check. */
  async closeOwnedBy(sub: string): Promise<number> {
    const closed = await this.local.closeOwnedBy(sub);
    await this.options.store.removeOwnedBy(sub);
    await this.options.streamEvents?.forgetOwnedBy(sub);
    return closed;
  }

  /** Close this replica's copies (shutdown): the sessions live on in the table, for the other replicas. */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await this.flush(() => true).catch((e: unknown) => this.options.log.warn('last-seen times not written at shutdown', { error: e }));
    await this.local.closeAll();
    await this.options.streamEvents?.close();
  }

  /** Delete sessions idle everywhere, close the copies held here, and write last-seen times not yet written. */
  async sweep(): Promise<void> {
    await this.flush(() => true);
    const idle = await this.options.store.removeIdle(this.now() - this.limits.idleMs);
    await this.options.streamEvents?.forgetSessions(idle);
    await Promise.all(idle.map((id) => this.local.closeOne(id)));
    await this.local.closeIdle();
    await this.options.streamEvents?.sweep(this.limits.now());
  }

  private async build(owner: SessionOwner, sessionId: () => string): Promise<HttpSession> {
    const server = this.options.createServer();
    const { streamEvents, relay } = this.options;
    const eventStore = streamEvents?.forSession(() => transport.sessionId, owner.sub);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: sessionId,
      ...(eventStore ? { eventStore, retryInterval: this.options.retryIntervalMs ?? 1000 } : {}),
      onsessioninitialized: (id) => {
        this.local.add(id, session);
        const at = this.now();
        this.freshness.set(session, { seenAt: at, validatedAt: at, flushedAt: at });
      },
      // DELETE (MCP 2025-06-18 basic/transports): the session ends on every replica.
      onsessionclosed: async (id) => {
        await this.options.store.remove(id);
        await this.options.streamEvents?.forgetSessions([id]);
        this.options.log.info('session ended', { transport: 'streamable-http', session: id, sub: owner.sub, reason: 'deleted' });
      },
    });
    const session: HttpSession = { owner, transport, close: () => server.close(), protocolVersion: () => server.server.getNegotiatedProtocolVersion() };
    this.servers.set(session, server);
    let detach: (() => void) | undefined;
    // Set before connect: the server chains its own close handling onto it.
    transport.onclose = () => {
      detach?.();
      if (transport.sessionId) this.local.remove(transport.sessionId, session);
    };
    await server.connect(transport);
    detach = relay?.attach(transport);
    return session;
  }

  /**
   * Record the session as `initialize` is answered (the negotiated revision
   * is in the answer), before the answer leaves: the client's next request
   * may land on any replica. If it cannot be recorded the client gets an
   * error instead of a session that only this replica knows.
   */
  private recordOnAnswer(session: HttpSession, owner: SessionOwner): void {
    const { transport } = session;
    const send = transport.send.bind(transport);
    let recorded = false;
    transport.send = async (message, options) => {
      const negotiated = recorded ? undefined : initializeAnswerRevision(message);
      if (negotiated === undefined || transport.sessionId === undefined) return send(message, options);
      recorded = true;
      try {
        await this.record(session, owner, transport.sessionId, negotiated);
      } catch (e) {
        this.options.log.error('session not recorded', { session: transport.sessionId, error: e });
        await send({ jsonrpc: '2.0', id: (message as { id: string | number }).id, error: { code: -32603, message: 'Internal error: the session could not be recorded' } }, options);
        void this.local.closeOne(transport.sessionId);
        return;
      }
      return send(message, options);
    };
  }

  private async record(session: HttpSession, owner: SessionOwner, id: string, protocolVersion: string): Promise<void> {
    const server = this.servers.get(session)?.server;
    // This replica's recency first, so the cap evicts the person's least recently used session.
    await this.flush((s) => s.owner.sub === owner.sub);
    const at = this.now();
    const evicted = await this.options.store.record(
      {
        id,
        sub: owner.sub,
        clientId: owner.clientId,
        protocolVersion,
        clientCapabilities: (server?.getClientCapabilities() ?? {}) as Record<string, unknown>,
        clientInfo: (server?.getClientVersion() ?? { name: 'unknown', version: '' }) as { name: string; version: string },
        createdAt: at,
        lastSeenAt: at,
      },
      this.limits.maxPerUser,
    );
    this.freshness.set(session, { seenAt: at, validatedAt: at, flushedAt: at });
    await this.options.streamEvents?.forgetSessions(evicted);
    await Promise.all(evicted.map((gone) => this.local.closeOne(gone)));
    this.options.log.info('session opened', { transport: 'streamable-http', session: id, sub: owner.sub, ...(evicted.length ? { evicted } : {}) });
  }

  /** A session held here: still live on the table? Asked at most every `revalidateMs`. */
  private async stillLive(id: string, session: HttpSession): Promise<boolean> {
    const at = this.now();
    const f = this.freshness.get(session);
    // Not yet recorded (the initialize answer is on its way): nothing to check.
    if (!f) return true;
    f.seenAt = at;
    if (at - f.validatedAt < this.revalidateMs) return true;
    // Set before the query: concurrent requests of the session do not all ask.
    f.validatedAt = at;
    if (await this.options.store.touchOne(id, at)) {
      f.flushedAt = at;
      return true;
    }
    await this.local.closeOne(id);
    this.options.log.info('session ended on another replica', { transport: 'streamable-http', session: id, sub: session.owner.sub });
    return false;
  }

  private async rebuild(id: string, principal: Principal): Promise<Lookup<HttpSession>> {
    const started = performance.now();
    const at = this.now();
    const used = await this.options.store.use(id, ownerOf(principal), at);
    if (!used.found) return used;
    const { record } = used;
    const session = await this.build({ sub: record.sub, clientId: record.clientId }, () => record.id);
    try {
      await restoreInitialized(session.transport, record as Parameters<typeof restoreInitialized>[1]);
    } catch (e) {
      // The client is told 404 and starts a new session (MCP 2025-06-18 basic/transports).
      this.options.log.error('session not rebuilt', { session: id, error: e });
      await this.local.closeOne(id);
      await session.close();
      return { found: false, reason: 'unknown' };
    }
    this.freshness.set(session, { seenAt: at, validatedAt: at, flushedAt: at });
    const ms = performance.now() - started;
    this.options.onRebuilt?.(ms);
    this.options.log.info('session rebuilt', { transport: 'streamable-http', session: id, sub: record.sub, ms: Math.round(ms * 100) / 100 });
    return { found: true, session };
  }

  /** Write the last-seen times of held sessions seen since their last write. */
  private async flush(which: (s: HttpSession) => boolean): Promise<void> {
    const dirty: { id: string; at: number; f: Freshness }[] = [];
    for (const s of this.local.held()) {
      const f = this.freshness.get(s);
      if (f && f.seenAt > f.flushedAt && s.transport.sessionId && which(s)) dirty.push({ id: s.transport.sessionId, at: f.seenAt, f });
    }
    if (!dirty.length) return;
    await this.options.store.touch(dirty);
    for (const d of dirty) d.f.flushedAt = Math.max(d.f.flushedAt, d.at);
  }
}

const owns = (owner: SessionOwner, principal: Principal) => owner.sub === principal.sub && owner.clientId === principal.clientId;

/** The revision of an answer to `initialize` (a result naming protocolVersion and serverInfo), if `message` is one. */
function initializeAnswerRevision(message: JSONRPCMessage): string | undefined {
  const result = (message as { result?: { protocolVersion?: unknown; serverInfo?: unknown } }).result;
  return result && typeof result.protocolVersion === 'string' && result.serverInfo ? result.protocolVersion : undefined;
}
