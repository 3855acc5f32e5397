import type { Principal } from '../auth/tokenVerifier.js';

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

/**
 * The live sessions of one app (one registry per transport, never a module
 * global), each bound to the principal that created it (MCP 2025-06-18
 * security best practices: session ids must not stand in for authentication).
 */
export class SessionRegistry<S extends Session> {
  private readonly sessions = new Map<string, S>();

  add(id: string, session: S): void {
    this.sessions.set(id, session);
  }

  /** The session `id`, only if `principal` owns it. */
  lookup(id: string, principal: Principal): Lookup<S> {
    const session = this.sessions.get(id);
    if (!session) return { found: false, reason: 'unknown' };
    if (session.owner.sub !== principal.sub || session.owner.clientId !== principal.clientId) {
      return { found: false, reason: 'not_owner' };
    }
    return { found: true, session };
  }

  remove(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  async closeAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}

export function ownerOf(principal: Principal): SessionOwner {
  return { sub: principal.sub, clientId: principal.clientId };
}
