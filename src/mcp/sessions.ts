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
  /** Most live sessions in this registry. */
  maxSessions: number;
  /** Most live sessions one user (sub) may hold. */
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

  /** Why a new session for `principal` cannot be opened now, if it cannot. */
  refusal(principal: Principal): string | undefined {
    if (this.sessions.size >= this.limits.maxSessions) return 'Too many open sessions on this server; try again later';
    let mine = 0;
    for (const { session } of this.sessions.values()) if (session.owner.sub === principal.sub) mine++;
    if (mine >= this.limits.maxPerUser) return `Too many open sessions for this user (at most ${this.limits.maxPerUser}); close one first`;
    return undefined;
  }

  add(id: string, session: S): void {
    this.sessions.set(id, { session, lastUsed: this.limits.now() });
  }

  /** The session `id`, only if `principal` owns it; using it keeps it alive. */
  lookup(id: string, principal: Principal): Lookup<S> {
    const entry = this.sessions.get(id);
    if (!entry) return { found: false, reason: 'unknown' };
    const { owner } = entry.session;
    if (owner.sub !== principal.sub || owner.clientId !== principal.clientId) return { found: false, reason: 'not_owner' };
    entry.lastUsed = this.limits.now();
    return { found: true, session: entry.session };
  }

  remove(id: string): void {
    this.sessions.delete(id);
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
