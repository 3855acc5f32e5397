import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import type { RateCounters } from '../store/windowCounters.js';

export interface SharedRateLimitStoreOptions {
  /** The counters every replica shares (the `rate_counters` table). */
  counters: RateCounters;
  /** Namespace of this limiter's keys, e.g. "token": two limiters never count each other's hits. */
  name: string;
  now?: () => number;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * An express-rate-limit `Store` over the shared counters, so a limit holds
 * across every replica on the same database instead of per process. One
 * instance per limiter (express-rate-limit refuses to share a store between
 * limiters); the window is the limiter's `windowMs`, given to `init`.
 */
export class SharedRateLimitStore implements Store {
  /** Counted in the database: hits on one replica count on all (tells express-rate-limit's checks). */
  readonly localKeys = false;
  readonly prefix: string;
  private windowMs = 60_000;
  private readonly counters: RateCounters;
  private readonly now: () => number;

  constructor(options: SharedRateLimitStoreOptions) {
    if (!NAME.test(options.name)) throw new TypeError(`SharedRateLimitStore name must match ${NAME}, got ${JSON.stringify(options.name)}`);
    this.counters = options.counters;
    this.prefix = `rl:${options.name}:`;
    this.now = options.now ?? Date.now;
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const c = await this.counters.get(this.prefix + key, this.now());
    return c && { totalHits: c.hits, resetTime: new Date(c.resetAt) };
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const c = await this.counters.increment(this.prefix + key, this.windowMs, this.now());
    return { totalHits: c.hits, resetTime: new Date(c.resetAt) };
  }

  async decrement(key: string): Promise<void> {
    await this.counters.decrement(this.prefix + key, this.now());
  }

  async resetKey(key: string): Promise<void> {
    await this.counters.reset(this.prefix + key);
  }
}

/** A factory for the limiters' injectable `store` option: a fresh store per limiter, named after it. */
export const sharedRateLimitStores = (counters: RateCounters) => (name: string) => new SharedRateLimitStore({ counters, name });
