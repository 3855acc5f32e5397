import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { type Session, SessionRegistry } from '../../src/mcp/sessions.js';

const principal = (sub: string, clientId = 'c1'): Principal => ({ sub, clientId, scopes: [], expiresAt: 0 });
function session(sub: string, clientId = 'c1') {
  const s = { owner: { sub, clientId }, closed: false, close: async () => void (s.closed = true) };
  return s;
}

describe('SessionRegistry', () => {
  it("finds a session only for the user and client that opened it", () => {
    const r = new SessionRegistry<Session>();
    r.add('s1', session('alice'));
    expect(r.lookup('s1', principal('alice')).found).toBe(true);
    expect(r.lookup('s1', principal('bob'))).toEqual({ found: false, reason: 'not_owner' });
    expect(r.lookup('s1', principal('alice', 'other-client'))).toEqual({ found: false, reason: 'not_owner' });
    expect(r.lookup('nope', principal('alice'))).toEqual({ found: false, reason: 'unknown' });
    void r.closeAll();
  });

  it('bounds sessions per user and in total', () => {
    const r = new SessionRegistry<Session>({ maxSessions: 3, maxPerUser: 2 });
    r.add('a1', session('alice'));
    r.add('a2', session('alice'));
    expect(r.refusal(principal('alice'))).toContain('at most 2');
    expect(r.refusal(principal('bob'))).toBeUndefined();
    r.add('b1', session('bob'));
    expect(r.refusal(principal('carol'))).toContain('Too many open sessions on this server');
    void r.closeAll();
  });

  it('closes sessions left idle, and keeps used ones', async () => {
    let now = 0;
    const r = new SessionRegistry<Session>({ idleMs: 1000, now: () => now });
    const idle = session('alice');
    const busy = session('bob');
    r.add('idle', idle);
    r.add('busy', busy);
    now = 900;
    r.lookup('busy', principal('bob'));
    now = 1500;
    expect(await r.closeIdle()).toBe(1);
    expect(idle.closed).toBe(true);
    expect(busy.closed).toBe(false);
    expect(r.lookup('idle', principal('alice')).found).toBe(false);
    await r.closeAll();
    expect(busy.closed).toBe(true);
  });
});
