import type { Principal } from '../auth/principal.js';

/** Who opened a session: later requests must come from the same user and client. */
export interface SessionOwner {
  sub: string;
  clientId: string;
}

export interface Session {
  owner: SessionOwner;
  /** Ends the session: closes its transport and server. */
  close(): Promise<void>;
}

export type Lookup<S extends Session> =
  | { found: true; session: S }
  | { found: false; reason: 'unknown' | 'not_owner' };

export interface SessionLimits {
  /**
   * Most live sessions in this registry: the bound on memory. When it is
   * reached, a person who holds a session gets their own least recently used
   * one replaced; a person who holds none is refused (503).
   */
  maxSessions: number;
  /** Most live sessions one user (sub) may hold; one more closes their least recently used. */
  maxPerUser: number;
  /** Sessions unused this long are closed. */
  idleMs: number;
  now?: () => number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxSessions: 1000, maxPerUser: 20, idleMs: 30 * 60_000 };

/**
 * The live sessions of one app (one registry per transport, never a module
 * global), each bound to the principal that created it (MCP 2025-06-18
 * security best practices: session ids must not stand in for authentication),
 * bounded in number, and closed when idle.
 *
 * A person at their cap never gets refused: clients often drop connections
 * without the closing DELETE, and lose the ids, so a refusal would lock the
 * person out until the idle timeout. Their least recently used session is
 * closed instead. MCP 2025-06-18 basic/transports, "Session Management": the
 * server MAY terminate a session at any time, then MUST answer its id with
 * 404, and a client that gets 404 MUST start a new session.
 * The map is kept in recency order (every request moves its session to the
 * end), so "least recently used" is the first entry of that person.
 */
export class SessionRegistry<S extends Session> {
  private readonly sessions = new Map<string, { session: S; lastUsed: number }>();
  private readonly limits: Required<SessionLimits>;
  private readonly sweeper: NodeJS.Timeout;

  constructor(limits: Partial<SessionLimits> = {}) {
    this.limits = { now: Date.now, ...DEFAULT_SESSION_LIMITS, ...limits };
    // Checked every minute (or idle time, if shorter); unref'd so it never keeps the process alive.
    this.sweeper = setInterval(() => void this.closeIdle(), Math.min(60_000, this.limits.idleMs));
    this.sweeper.unref();
  }

  /**
   * Why a new session for `principal` cannot be opened now, if it cannot:
   * only when the server is full and the person holds no session of their
   * own to give up. Full or not, one person's new session never closes
   * another person's.
   */
  refusal(principal: Principal): string | undefined {
    if (this.sessions.size < this.limits.maxSessions) return undefined;
    if (this.heldBy(principal.sub).count > 0) return undefined;
    return 'Too many open sessions on this server; try again later';
  }

  /**
   * Registers a new session. If its owner is at the per-user cap, or the
   * server is full and the owner holds a session, the owner's least recently
   * used sessions are closed first; returns their ids.
   */
  add(id: string, session: S): string[] {
    const evicted: string[] = [];
    // A loop, not one eviction: concurrent initializes of one person may all
    // have passed refusal(). (Those of people holding nothing, racing into a
    // full server, overshoot the bound by at most their number.)
    for (;;) {
      const { count, oldest } = this.heldBy(session.owner.sub);
      const full = this.sessions.size >= this.limits.maxSessions;
      if (oldest === undefined || (count < this.limits.maxPerUser && !full)) break;
      this.evict(oldest);
      evicted.push(oldest);
    }
    this.sessions.set(id, { session, lastUsed: this.limits.now() });
    return evicted;
  }

  /** How many sessions `sub` holds, and the id of its least recently used. */
  private heldBy(sub: string): { count: number; oldest?: string } {
    let count = 0;
    let oldest: string | undefined;
    for (const [id, { session }] of this.sessions) {
      if (session.owner.sub !== sub) continue;
      count++;
      oldest ??= id;
    }
    return { count, oldest };
  }

  private evict(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry) return;
    this.sessions.delete(id);
    // Closing ends its streams; the transport's onclose then finds the id already gone.
    void Promise.allSettled([entry.session.close()]);
  }

  /** The session `id`, only if `principal` owns it; using it keeps it alive. */
  lookup(id: string, principal: Principal): Lookup<S> {
    const entry = this.sessions.get(id);
    if (!entry) return { found: false, reason: 'unknown' };
    const { owner } = entry.session;
    if (owner.sub !== principal.sub || owner.clientId !== principal.clientId) return { found: false, reason: 'not_owner' };
    entry.lastUsed = this.limits.now();
    // Move to the end: the map's order is recency order (see the class comment).
    this.sessions.delete(id);
    this.sessions.set(id, entry);
    return { found: true, session: entry.session };
  }

  /** Forget `id` (its transport closed); given `session`, only if the entry is still that one (a rebuilt session may have taken the id since). */
  remove(id: string, session?: S): void {
    if (session && this.sessions.get(id)?.session !== session) return;
    this.sessions.delete(id);
  }

  /** The session `id` whoever owns it, without using it (no change of recency). */
  peek(id: string): S | undefined {
    return this.sessions.get(id)?.session;
  }

  /** Close the session `id` if held here; true if it was. */
  async closeOne(id: string): Promise<boolean> {
    const entry = this.sessions.get(id);
    if (!entry) return false;
    this.sessions.delete(id);
    await Promise.allSettled([entry.session.close()]);
    return true;
  }

  /** The sessions held here, least recently used first. */
  held(): S[] {
    return [...this.sessions.values()].map((e) => e.session);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Close sessions idle longer than the limit; returns how many. */
  async closeIdle(): Promise<number> {
    const cutoff = this.limits.now() - this.limits.idleMs;
    const idle = [...this.sessions].filter(([, e]) => e.lastUsed <= cutoff);
    for (const [id] of idle) this.sessions.delete(id);
    await Promise.allSettled(idle.map(([, e]) => e.session.close()));
    return idle.length;
  }

  /** Close every session of `sub` (their account was removed); returns how many. */
  async closeOwnedBy(sub: string): Promise<number> {
    const owned = [...this.sessions].filter(([, e]) => e.session.owner.sub === sub);
    for (const [id] of owned) this.sessions.delete(id);
    await Promise.allSettled(owned.map(([, e]) => e.session.close()));
    return owned.length;
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((e) => e.session.close()));
  }
}

export function ownerOf(principal: Principal): SessionOwner {
  return { sub: principal.sub, clientId: principal.clientId };
}
