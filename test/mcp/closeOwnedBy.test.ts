import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { type Session, SessionRegistry } from '../../src/mcp/sessions.js';

const principal = (sub: string, clientId = 'c1'): Principal => ({ sub, clientId, scopes: [], expiresAt: 0, kind: 'person' });
function session(sub: string, clientId = 'c1') {
  const s = { owner: { sub, clientId }, closed: false, close: async () => void (s.closed = true) };
  return s;
}

describe('SessionRegistry.closeOwnedBy (a removed account)', () => {
  it("closes every session of the sub, from every client, and nobody else's", async () => {
    const r = new SessionRegistry<Session>();
    const carol = [session('carol', 'c1'), session('carol', 'c2')];
    const dan = session('dan');
    r.add('k1', carol[0]!);
    r.add('k2', carol[1]!);
    r.add('k3', dan);
    expect(await r.closeOwnedBy('carol')).toBe(2);
    expect(carol.map((s) => s.closed)).toEqual([true, true]);
    expect(r.lookup('k1', principal('carol', 'c1'))).toEqual({ found: false, reason: 'unknown' });
    expect(dan.closed).toBe(false);
    expect(r.lookup('k3', principal('dan')).found).toBe(true);
    expect(await r.closeOwnedBy('carol'), 'again: nothing left').toBe(0);
    await r.closeAll();
  });
});
