import { describe, expect, it } from 'vitest';
import { Signer } from '../../src/login/cookies.js';
import { LoginThrottle } from '../../src/login/throttle.js';

describe('LoginThrottle (injected clock)', () => {
  it('lets the first failures through, then doubles the delay up to the cap', () => {
    const t = new LoginThrottle({ now: () => 0 });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const v = t.check('a@x', '10.0.0.1');
      delays.push(v.allowed ? v.delayMs : -1);
      t.recordFailure('a@x', '10.0.0.1');
    }
    expect(delays).toEqual([0, 0, 0, 500, 1000, 2000, 4000, 8000]);
  });

  it('locks an account after 10 failures until the window passes, from any address', () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now });
    for (let i = 0; i < 10; i++) t.recordFailure('a@x', `10.0.0.${i}`);
    expect(t.check('a@x', '10.9.9.9')).toEqual({ allowed: false, retryAfterSeconds: 900 });
    expect(t.check('b@x', '10.9.9.9')).toMatchObject({ allowed: true });
    now += 15 * 60_000;
    expect(t.check('a@x', '10.9.9.9')).toEqual({ allowed: true, delayMs: 0 });
  });

  it('locks an address after 50 failures across accounts', () => {
    const t = new LoginThrottle({ now: () => 0 });
    for (let i = 0; i < 50; i++) t.recordFailure(`user${i}@x`, '10.0.0.1');
    expect(t.check('fresh@x', '10.0.0.1')).toMatchObject({ allowed: false });
    expect(t.check('fresh@x', '10.0.0.2')).toMatchObject({ allowed: true });
  });

  it('a right password clears the account but not the address', () => {
    const t = new LoginThrottle({ now: () => 0 });
    for (let i = 0; i < 5; i++) t.recordFailure('a@x', '10.0.0.1');
    t.recordSuccess('a@x');
    expect(t.check('a@x', '10.0.0.2')).toEqual({ allowed: true, delayMs: 0 });
    expect(t.check('a@x', '10.0.0.1')).toEqual({ allowed: true, delayMs: 2000 });
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
