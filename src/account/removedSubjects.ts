import type { Logger } from '../log/logger.js';
import type { KratosSubjectsStore } from '../store/kratosSubjectsStore.js';
import type { RemovedSubjectsStore } from '../store/removedSubjectsStore.js';

export interface RemovedSubjectsOptions {
  /** The shared `removed_subjects` table. */
  store: RemovedSubjectsStore;
  /**
   * IDENTITY=kratos: suspensions of identities deactivated in Kratos (the
   * `kratos_subjects` table, src/account/accountSuspension.ts).
   */
  suspensions?: Pick<KratosSubjectsStore, 'suspensions'>;
  /**
   * How long a subject is refused after its removal completed (or tokens
   * issued before a reactivation after it), in seconds. At least the longest
   * access-token lifetime Hydra issues (ttl.access_token): a JWT issued up
   * to then cannot outlive it, so after that there is nothing left to refuse.
   */
  retentionSeconds: number;
  /** How often the list is read from the table, in milliseconds. */
  refreshMs?: number;
  /** How often removals completed longer than retention ago are deleted from the table, in milliseconds. */
  pruneEveryMs?: number;
  log: Logger;
  now?: () => number;
}

export const DEFAULT_REFRESH_MS = 5_000;
const DEFAULT_PRUNE_EVERY_MS = 10 * 60_000;

/** Why every token of a subject is refused. */
type Refused = 'removed' | 'suspended';
/** A change made in this process: a refusal, or a reactivation (tokens issued before `before`, in seconds, stay refused). */
type Change = Refused | { before: number };

const REFUSALS: Record<Refused, string> = {
  removed: 'The account this token was issued for has been removed',
  suspended: 'The account this token was issued for is suspended',
};
const ISSUED_BEFORE_REACTIVATION = 'This token was issued before its account was suspended';

/**
 * The subjects whose tokens are refused, held in memory so the check on
 * every request is one Map lookup. Every process reads the tables every
 * `refreshMs` (so another replica's removal or suspension bites within that
 * time), and a change in this process applies at once. Unfinished removals
 * and suspensions are refused whatever their age; finished removals for
 * `retentionSeconds` after they finished; after a reactivation, the tokens
 * issued before it, for `retentionSeconds`.
 */
export class RemovedSubjects {
  private subjects = new Map<string, Refused>();
  /** Reactivated subjects: their tokens issued before this time (seconds since the epoch) are refused. */
  private issuedBefore = new Map<string, number>();
  /** Changed here since the last reload began: kept across a reload that may have missed them. */
  private readonly recent = new Map<string, { at: number; change: Change }>();
  private timer: NodeJS.Timeout | undefined;
  private lastPrune = 0;
  private readonly now: () => number;

  constructor(private readonly options: RemovedSubjectsOptions) {
    if (!Number.isInteger(options.retentionSeconds) || options.retentionSeconds < 1) {
      throw new TypeError('retentionSeconds must be a whole number of seconds, 1 or more');
    }
    this.now = options.now ?? Date.now;
  }

  /** True when every token of `sub` must be refused (account removed or suspended). O(1). */
  has(sub: string): boolean {
    return this.subjects.has(sub);
  }

  /**
   * Why a token of `sub` issued at `issuedAt` (seconds since the epoch;
   * undefined when the token does not say) is refused, as its public
   * description; undefined when it is not. O(1).
   */
  refusal(sub: string, issuedAt: number | undefined): string | undefined {
    const refused = this.subjects.get(sub);
    if (refused) return REFUSALS[refused];
    const before = this.issuedBefore.get(sub);
    // Second precision (iat): a token of the reactivation's own second passes; one from before the suspension cannot be that recent.
    if (before !== undefined && (issuedAt === undefined || issuedAt < before)) return ISSUED_BEFORE_REACTIVATION;
    return undefined;
  }

  /** Refuse `sub` in this process now (the removal has already written its row). */
  add(sub: string): void {
    this.apply(sub, 'removed', true);
  }

  /** Refuse `sub` in this process now: suspended (the suspension has already written its row). */
  suspend(sub: string): void {
    this.apply(sub, 'suspended', true);
  }

  /** Lift `sub`'s suspension in this process now; tokens issued before `at` stay refused. */
  reactivate(sub: string, at: Date): void {
    this.apply(sub, { before: Math.floor(at.getTime() / 1000) }, true);
  }

  get size(): number {
    return this.subjects.size;
  }

  private apply(sub: string, change: Change, remember: boolean): void {
    if (remember) this.recent.set(sub, { at: this.now(), change });
    // A removal outranks a suspension and a reactivation.
    if (this.subjects.get(sub) === 'removed') return;
    if (typeof change === 'string') this.subjects.set(sub, change);
    else {
      this.subjects.delete(sub);
      this.issuedBefore.set(sub, change.before);
    }
  }

  /** Read the tables now; on failure keep the current list (forgetting a removal would let its tokens back in). */
  async refresh(): Promise<void> {
    const started = this.now();
    const cutoff = new Date(started - this.options.retentionSeconds * 1000);
    const [rows, suspensions] = await Promise.all([this.options.store.refusedSince(cutoff), this.options.suspensions?.suspensions(cutoff)]);
    this.subjects = new Map(suspensions?.suspended.map((sub) => [sub, 'suspended']));
    for (const r of rows) this.subjects.set(r.sub, 'removed');
    this.issuedBefore = new Map(suspensions?.reactivated.map((r) => [r.sub, Math.floor(Date.parse(r.at) / 1000)]));
    for (const [sub, { at, change }] of this.recent) {
      // Changed before this read began: its row was committed first, so the read saw it.
      if (at < started) this.recent.delete(sub);
      else this.apply(sub, change, false);
    }
    if (started - this.lastPrune >= (this.options.pruneEveryMs ?? DEFAULT_PRUNE_EVERY_MS)) {
      this.lastPrune = started;
      const pruned = await this.options.store.prune(cutoff);
      if (pruned) this.options.log.info('pruned removed subjects past retention', { count: pruned });
    }
  }

  /** Load the list once (so nothing is served before it is known), then keep it fresh. */
  async start(): Promise<void> {
    await this.refresh();
    let reading = false;
    this.timer = setInterval(() => {
      // One read at a time: a slow database must not stack reads (or let an older one win).
      if (reading) return;
      reading = true;
      this.refresh()
        .catch((error: unknown) => this.options.log.warn('reading removed subjects failed; keeping the last list', { error }))
        .finally(() => (reading = false));
    }, this.options.refreshMs ?? DEFAULT_REFRESH_MS);
    // Never keeps the process alive on its own.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
