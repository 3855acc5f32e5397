import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Signer } from '../../src/web/cookies.js';
import { LoginThrottle, type ThrottleOptions } from '../../src/limits/throttle.js';
import { openDatabase } from '../../src/store/database.js';
import { memoryRateCounters, rateCountersStore } from '../../src/store/windowCounters.js';

/** Where the throttle counts: this process's memory, or the shared table (SQLite file here; PostgreSQL in the store contract). */
const COUNTERS = {
  memory: async () => ({ counters: () => memoryRateCounters(), close: async () => {} }),
  'shared table': async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    return { counters: () => rateCountersStore(db), close: () => db.destroy() };
  },
};

describe.each(Object.keys(COUNTERS) as (keyof typeof COUNTERS)[])('LoginThrottle over %s counters (injected clock)', (kind) => {
  let backend: Awaited<ReturnType<(typeof COUNTERS)[typeof kind]>>;
  beforeEach(async () => {
    backend = await COUNTERS[kind]();
  });
  afterEach(async () => {
    await backend.close();
  });
  const throttle = (options: ThrottleOptions = {}) => new LoginThrottle({ counters: backend.counters(), ...options });

  it('lets the first failures through, then doubles the delay up to the cap', async () => {
    const t = throttle({ now: () => 0 });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const v = await t.begin('a@x', '10.0.0.1');
      delays.push(v.allowed ? v.delayMs : -1);
    }
    expect(delays).toEqual([0, 0, 0, 500, 1000, 2000, 4000, 8000]);
  });

  it('locks an account after 10 failures until the window passes, from any address', async () => {
    let now = 0;
    const t = throttle({ now: () => now });
    for (let i = 0; i < 10; i++) expect(await t.begin('a@x', `10.0.0.${i}`)).toMatchObject({ allowed: true });
    expect(await t.begin('a@x', '10.9.9.9')).toEqual({ allowed: false, retryAfterSeconds: 900, lockedBy: 'account' });
    expect(await t.begin('b@x', '10.9.9.9')).toEqual({ allowed: true, delayMs: 0 });
    now += 15 * 60_000;
    expect(await t.begin('a@x', '10.9.9.9')).toEqual({ allowed: true, delayMs: 0 });
  });

  it('locks an address after 50 failures across accounts', async () => {
    const t = throttle({ now: () => 0 });
    for (let i = 0; i < 50; i++) await t.begin(`user${i}@x`, '10.0.0.1');
    // The address is what is locked (signin_attempts_total says rate_limited, not locked).
    expect(await t.begin('fresh@x', '10.0.0.1')).toMatchObject({ allowed: false, lockedBy: 'address' });
    expect(await t.begin('fresh@x', '10.0.0.2')).toMatchObject({ allowed: true });
  });

  it('a right password clears the account but not the address', async () => {
    const t = throttle({ now: () => 0 });
    for (let i = 0; i < 5; i++) await t.begin('a@x', '10.0.0.1');
    await t.begin('a@x', '10.0.0.1');
    await t.recordSuccess('a@x', '10.0.0.1');
    expect(await t.begin('a@x', '10.0.0.2')).toEqual({ allowed: true, delayMs: 0 });
    // The account has that one failure since; the address its 5.
    expect(await t.begin('a@x', '10.0.0.1')).toEqual({ allowed: true, delayMs: 2000 });
  });

  it('does not count refused attempts: hammering a locked account uses up none of the address allowance', async () => {
    const t = throttle({ now: () => 0 });
    for (let i = 0; i < 10; i++) await t.begin('a@x', '10.0.0.1');
    for (let i = 0; i < 60; i++) expect(await t.begin('a@x', '10.0.0.2')).toMatchObject({ allowed: false });
    expect(await t.begin('b@x', '10.0.0.2')).toEqual({ allowed: true, delayMs: 0 });
  });

  it('counts attempts made at the same time one by one: 15 at once → 10 let through with growing delays, 5 refused', async () => {
    const t = throttle({ now: () => 0 });
    const verdicts = await Promise.all(Array.from({ length: 15 }, (_, i) => t.begin('a@x', `10.0.0.${i}`)));
    const delays = verdicts.flatMap((v) => (v.allowed ? [v.delayMs] : [])).sort((a, b) => a - b);
    expect(delays).toEqual([0, 0, 0, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
    expect(verdicts.filter((v) => !v.allowed)).toHaveLength(5);
  });
});

describe('LoginThrottle: two replicas over one counters table', () => {
  it('failures alternating between two throttles on one database lock the account as one throttle would', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    try {
      const replicas = [new LoginThrottle({ counters: rateCountersStore(db), now: () => 0 }), new LoginThrottle({ counters: rateCountersStore(db), now: () => 0 })];
      for (let i = 0; i < 10; i++) await replicas[i % 2]!.begin('a@x', `10.0.0.${i}`);
      for (const t of replicas) expect(await t.begin('a@x', '10.9.9.9')).toEqual({ allowed: false, retryAfterSeconds: 900, lockedBy: 'account' });
      // Counted in each process's memory instead, each replica would have seen 5 and only delayed.
      const apart = [new LoginThrottle({ now: () => 0 }), new LoginThrottle({ now: () => 0 })];
      for (let i = 0; i < 10; i++) await apart[i % 2]!.begin('a@x', `10.0.0.${i}`);
      expect(await apart[0]!.begin('a@x', '10.9.9.9')).toEqual({ allowed: true, delayMs: 2000 });
      // A success on one replica clears the account on both.
      await replicas[1]!.recordSuccess('a@x', '10.9.9.9');
      expect(await replicas[0]!.begin('a@x', '10.9.9.9')).toEqual({ allowed: true, delayMs: 0 });
    } finally {
      await db.destroy();
    }
  });

  it('keeps no typed email in the table: accounts are counted by digest', async () => {
    const db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    try {
      await new LoginThrottle({ counters: rateCountersStore(db), now: () => 0 }).begin('someone@example.com', '10.0.0.1');
      const keys = (await db.selectFrom('rate_counters').select('key').execute()).map((r) => r.key).sort();
      expect(keys).toHaveLength(2);
      expect(keys.join(' ')).not.toContain('example.com');
      expect(keys[1]).toBe('login:i:10.0.0.1');
    } finally {
      await db.destroy();
    }
  });
});

describe('Signer', () => {
  const s = new Signer('k'.repeat(32));
  it('round-trips a signed value and refuses a tampered one', () => {
    const signed = s.sign('sub-1|123');
    expect(s.unsign(signed)).toBe('sub-1|123');
    expect(s.unsign(signed.replace('sub-1', 'sub-2'))).toBeUndefined();
    expect(s.unsign('sub-1|123')).toBeUndefined();
    expect(new Signer('j'.repeat(32)).unsign(signed)).toBeUndefined();
  });
  it('refuses a short secret', () => {
    expect(() => new Signer('short')).toThrow('at least 32 characters');
  });
});
