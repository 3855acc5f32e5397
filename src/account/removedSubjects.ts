import type { Logger } from '../log/logger.js';
import type { RemovedSubjectsStore } from '../store/removedSubjectsStore.js';

export interface RemovedSubjectsOptions {
  /** The shared `removed_subjects` table. */
  store: RemovedSubjectsStore;
  /**
   * How long a subject is refused after its removal began, in seconds. At
   * least the longest access-token lifetime Hydra issues (ttl.access_token):
   * a JWT cannot outlive it, so after that there is nothing left to refuse.
   */
  retentionSeconds: number;
  /** How often the list is read from the table, in milliseconds. */
  refreshMs?: number;
  /** How often completed removals past retention are deleted from the table, in milliseconds. */
  pruneEveryMs?: number;
  log: Logger;
  now?: () => number;
}

export const DEFAULT_REFRESH_MS = 5_000;
const DEFAULT_PRUNE_EVERY_MS = 10 * 60_000;

/**
 * The subjects whose tokens are refused, held in memory so the check on
 * every request is one Set lookup. Every process reads the table every
 * `refreshMs` (so another replica's removal bites within that time), and a
 * removal in this process is added at once. Unfinished removals are refused
 * whatever their age; finished ones for `retentionSeconds`.
 */
export class RemovedSubjects {
  private subjects = new Set<string>();
  /** Added here since the last reload began: kept across a reload that may have missed them. */
  private readonly recent = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private lastPrune = 0;
  private readonly now: () => number;

  constructor(private readonly options: RemovedSubjectsOptions) {
    if (!Number.isInteger(options.retentionSeconds) || options.retentionSeconds < 1) {
      throw new TypeError('retentionSeconds must be a whole number of seconds, 1 or more');
    }
    this.now = options.now ?? Date.now;
  }

  /** True when `sub`'s account was removed: its tokens must be refused. O(1). */
  has(sub: string): boolean {
    return this.subjects.has(sub);
  }

  /** Refuse `sub` in this process now (the removal has already written its row). */
  add(sub: string): void {
    this.recent.set(sub, this.now());
    this.subjects.add(sub);
  }

  get size(): number {
    return this.subjects.size;
  }

  /** Read the table now; on failure keep the current list (forgetting a removal would let its tokens back in). */
  async refresh(): Promise<void> {
    const started = this.now();
    const cutoff = new Date(started - this.options.retentionSeconds * 1000);
    const rows = await this.options.store.refusedSince(cutoff);
    const next = new Set(rows.map((r) => r.sub));
    for (const [sub, addedAt] of this.recent) {
      // Added before this read began: its row was committed first, so the read saw it.
      if (addedAt < started) this.recent.delete(sub);
      else next.add(sub);
    }
    this.subjects = next;
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
