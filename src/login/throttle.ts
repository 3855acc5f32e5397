import { LruCache } from '../auth/lruCache.js';

export interface ThrottleOptions {
  /** Failures tolerated before delays start. */
  freeFailures?: number;
  /** First delay, doubled for each further failure, capped by maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures within the window after which attempts are refused outright. */
  lockAfter?: { account: number; address: number };
  /** How long failures are remembered. */
  windowMs?: number;
  now?: () => number;
}

export type Verdict = { allowed: true; delayMs: number } | { allowed: false; retryAfterSeconds: number };

interface Failures {
  count: number;
  first: number;
}

/**
 * Slows down password guessing, per account and per client address: after a
 * few failures every attempt waits longer (exponential, capped), and past a
 * limit within the window attempts are refused with 429. State is in memory,
 * bounded; with several replicas each keeps its own (documented).
 */
export class LoginThrottle {
  private readonly failures: LruCache<Failures>;
  private readonly o: Required<ThrottleOptions>;

  constructor(options: ThrottleOptions = {}) {
    this.o = {
      freeFailures: 3,
      baseDelayMs: 500,
      maxDelayMs: 8_000,
      lockAfter: { account: 10, address: 50 },
      windowMs: 15 * 60_000,
      now: Date.now,
      ...options,
    };
    this.failures = new LruCache(50_000, this.o.now);
  }

  /** What to do before checking a password for `account` from `address`. */
  check(account: string, address: string): Verdict {
    const acc = this.failures.get(`a:${account}`);
    const addr = this.failures.get(`i:${address}`);
    const locked = (f: Failures | undefined, limit: number) => f !== undefined && f.count >= limit;
    if (locked(acc, this.o.lockAfter.account) || locked(addr, this.o.lockAfter.address)) {
      const first = Math.min(acc?.first ?? Infinity, addr?.first ?? Infinity);
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((first + this.o.windowMs - this.o.now()) / 1000)) };
    }
    const worst = Math.max(acc?.count ?? 0, addr?.count ?? 0);
    const over = worst - this.o.freeFailures;
    return { allowed: true, delayMs: over < 0 ? 0 : Math.min(this.o.baseDelayMs * 2 ** over, this.o.maxDelayMs) };
  }

  recordFailure(account: string, address: string): void {
    for (const key of [`a:${account}`, `i:${address}`]) {
      const f = this.failures.get(key) ?? { count: 0, first: this.o.now() };
      f.count++;
      this.failures.set(key, f, f.first + this.o.windowMs - this.o.now());
    }
  }

  /** A right password clears the account's failures (not the address's). */
  recordSuccess(account: string): void {
    this.failures.delete(`a:${account}`);
  }
}
