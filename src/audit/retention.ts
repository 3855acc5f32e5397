import type { Logger } from '../log/logger.js';
import type { AuditStore } from '../store/auditStore.js';

export interface AuditRetentionOptions {
  store: Pick<AuditStore, 'deleteOlderThan'>;
  /** Records older than this many days are deleted. */
  days: number;
  log: Logger;
  /** How often the sweep runs, ms. Default one hour. */
  intervalMs?: number;
  now?: () => Date;
}

/**
 * Deletes audit records past AUDIT_RETENTION_DAYS in the background: once at
 * start, then every `intervalMs`, on an unref'd timer. Each replica may sweep;
 * the deletes are idempotent.
 */
export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: AuditRetentionOptions) {
    if (!Number.isSafeInteger(options.days) || options.days < 1) throw new TypeError('AuditRetention: days must be a positive integer');
  }

  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.options.intervalMs ?? 3_600_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep: deletes in batches until none is left; returns how many went. Never rejects. */
  sweep(): Promise<number> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<number> {
    const now = this.options.now?.() ?? new Date();
    const cutoff = new Date(now.getTime() - this.options.days * 86_400_000);
    let total = 0;
    try {
      for (let n = -1; n !== 0; total += n) n = await this.options.store.deleteOlderThan(cutoff);
      if (total) this.options.log.info('audit records past retention deleted', { deleted: total, days: this.options.days });
    } catch (e) {
      this.options.log.error('audit retention sweep failed', { error: e instanceof Error ? e.message : 'unknown' });
    }
    return total;
  }
}
