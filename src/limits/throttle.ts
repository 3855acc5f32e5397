import { createHash } from 'node:crypto';
import { memoryRateCounters, type RateCounters } from '../store/windowCounters.js';

export interface ThrottleOptions {
  /** Failures tolerated before delays start. */
  freeFailures?: number;
  /** First delay, doubled for each further failure, capped by maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures within the window after which attempts are refused outright. */
  lockAfter?: { account: number; address: number };
  /** How long failures are remembered, from the first one. */
  windowMs?: number;
  /**
   * Where failures are counted: the shared `rate_counters` table in a
   * deployment, so failures on any replica count on all; this process's
   * memory when not given (tests, a single process).
   */
  counters?: RateCounters;
  now?: () => number;
}

/** Refused: `lockedBy` says which count is past its limit, the account's (someone guessing one person's password) or the address's (one source guessing many). */
export type Verdict = { allowed: true; delayMs: number } | { allowed: false; retryAfterSeconds: number; lockedBy: 'account' | 'address' };

/**
 * Slows down password guessing, per account and per client address: after a
 * few failures every attempt waits longer (exponential, capped), and past a
 * limit within the window attempts are refused with 429. The counts live in
 * the counters it is given, shared by every replica on the same database.
 */
export class LoginThrottle {
  private readonly o: Required<Omit<ThrottleOptions, 'counters'>>;
  private readonly counters: RateCounters;

  constructor(options: ThrottleOptions = {}) {
    const { counters, ...rest } = options;
    this.o = {
      freeFailures: 3,
      baseDelayMs: 500,
      maxDelayMs: 8_000,
      lockAfter: { account: 10, address: 50 },
      windowMs: 15 * 60_000,
      now: Date.now,
      ...rest,
    };
    this.counters = counters ?? memoryRateCounters();
  }

  /**
   * Count an attempt for `account` from `address` before its password is
   * checked, and say what to do. Counting first (one atomic increment per
   * key) means attempts made at the same time, on any replica, each see the
   * ones before them: sending many at once earns no free guesses. A wrong
   * password leaves the attempt counted as a failure; a right one is taken
   * back by `recordSuccess`; a refused one is taken back here.
   */
  async begin(account: string, address: string): Promise<Verdict> {
    const now = this.o.now();
    const keys = [accountKey(account), addressKey(address)] as const;
    const [acc, addr] = await Promise.all(keys.map((key) => this.counters.increment(key, this.o.windowMs, now)));
    // The failures before this attempt.
    const before = { account: acc!.hits - 1, address: addr!.hits - 1 };
    const lockedBy = before.account >= this.o.lockAfter.account ? 'account' : before.address >= this.o.lockAfter.address ? 'address' : undefined;
    if (lockedBy) {
      await Promise.all(keys.map((key) => this.counters.decrement(key, now)));
      // The window of whichever count locked first ends first.
      const resetAt = Math.min(acc!.resetAt, addr!.resetAt);
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((resetAt - now) / 1000)), lockedBy };
    }
    const over = Math.max(before.account, before.address) - this.o.freeFailures;
    return { allowed: true, delayMs: over < 0 ? 0 : Math.min(this.o.baseDelayMs * 2 ** over, this.o.maxDelayMs) };
  }

  /** A right password clears the account's failures, and takes back the address's count of this attempt. */
  async recordSuccess(account: string, address: string): Promise<void> {
    await Promise.all([this.counters.reset(accountKey(account)), this.counters.decrement(addressKey(address), this.o.now())]);
  }
}

/** Accounts are counted by a digest of the typed email: the table keeps no address a stranger typed, and keys stay short. */
const accountKey = (account: string) => `login:a:${createHash('sha256').update(account).digest('base64url')}`;
const addressKey = (address: string) => `login:i:${address.slice(0, 100)}`;
