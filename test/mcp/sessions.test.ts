import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { DEFAULT_SESSION_LIMITS, type Session, SessionRegistry } from '../../src/mcp/sessions.js';

const principal = (sub: string, clientId = 'c1'): Principal => ({ sub, clientId, scopes: [], expiresAt: 0, kind: 'person' });
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

  it("a person's 21st session evicts their least recently used one (default cap 20), never a refusal", () => {
    expect(DEFAULT_SESSION_LIMITS).toMatchObject({ maxSessions: 1000, maxPerUser: 20, idleMs: 30 * 60_000 });
    const r = new SessionRegistry<Session>();
    const alice = Array.from({ length: 21 }, () => session('alice'));
    for (let i = 0; i < 20; i++) expect(r.add(`a${i}`, alice[i]!)).toEqual([]);
    expect(r.refusal(principal('alice'))).toBeUndefined();
    expect(r.add('a20', alice[20]!)).toEqual(['a0']);
    expect(alice[0]!.closed).toBe(true);
    expect(r.lookup('a0', principal('alice'))).toEqual({ found: false, reason: 'unknown' });
    expect(alice.slice(1).every((s) => !s.closed)).toBe(true);
    expect(r.lookup('a20', principal('alice')).found).toBe(true);
    expect(r.size).toBe(20);
    void r.closeAll();
  });

  it('an old session used recently survives; the one unused longest goes (recency is the last request)', () => {
    let now = 0;
    const r = new SessionRegistry<Session>({ maxPerUser: 3, now: () => now });
    const [first, second, third] = [session('alice'), session('alice'), session('alice')];
    r.add('first', first);
    now = 1;
    r.add('second', second);
    now = 2;
    r.add('third', third);
    now = 3;
    expect(r.lookup('first', principal('alice')).found).toBe(true);
    expect(r.add('fourth', session('alice'))).toEqual(['second']);
    expect(first.closed).toBe(false);
    expect(second.closed).toBe(true);
    // Same-millisecond requests still order by arrival: the map, not the clock, holds recency.
    expect(r.lookup('third', principal('alice')).found).toBe(true);
    expect(r.add('fifth', session('alice'))).toEqual(['first']);
    expect(third.closed).toBe(false);
    void r.closeAll();
  });

  it("another person's sessions are unaffected by one person's evictions, even when theirs are older", () => {
    const r = new SessionRegistry<Session>({ maxPerUser: 2 });
    const bob = [session('bob'), session('bob')];
    r.add('b0', bob[0]!);
    r.add('b1', bob[1]!);
    for (let i = 0; i < 30; i++) r.add(`a${i}`, session('alice'));
    expect(bob.some((s) => s.closed)).toBe(false);
    expect(r.lookup('b0', principal('bob')).found).toBe(true);
    expect(r.lookup('b1', principal('bob')).found).toBe(true);
    expect(r.size).toBe(4);
    void r.closeAll();
  });

  it('total cap: a full server refuses a person who holds no session, and lets one who does replace their own LRU', () => {
    const r = new SessionRegistry<Session>({ maxSessions: 3, maxPerUser: 2 });
    const alice = [session('alice'), session('alice')];
    const bob = session('bob');
    r.add('a0', alice[0]!);
    r.add('a1', alice[1]!);
    r.add('b0', bob);
    expect(r.refusal(principal('carol'))).toBe('Too many open sessions on this server; try again later');
    // Bob is below his own cap, but the server is full: his own oldest gives way, nobody else's.
    expect(r.refusal(principal('bob'))).toBeUndefined();
    expect(r.add('b1', session('bob'))).toEqual(['b0']);
    expect(bob.closed).toBe(true);
    expect(alice.some((s) => s.closed)).toBe(false);
    expect(r.refusal(principal('alice'))).toBeUndefined();
    expect(r.add('a2', session('alice'))).toEqual(['a0']);
    expect(r.size).toBe(3);
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
