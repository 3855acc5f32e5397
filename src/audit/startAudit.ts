import type { Metrics } from '../metrics/metrics.js';
import type { HydraAdmin } from '../hydra/index.js';
import type { Logger } from '../log/logger.js';
import { auditInserter, auditStore } from '../store/auditStore.js';
import { type Db, sqliteHandleOf } from '../store/database.js';
import { traceAuditInserts } from '../tracing/storeSpans.js';
import { Audit } from './audit.js';
import { AuditWriter } from './auditWriter.js';
import { ClientNames } from './clientNames.js';
import { AuditRetention } from './retention.js';

export interface StartAuditOptions {
  /** Config.audit: AUDIT and AUDIT_RETENTION_DAYS. */
  settings: { enabled: boolean; retentionDays: number };
  db: Db;
  hydraAdmin: Pick<HydraAdmin, 'getClient'>;
  log: Logger;
  metrics: Pick<Metrics, 'audit'>;
  /** Writer tuning (tests, the benchmark). */
  writer?: { maxQueue?: number; batchSize?: number; flushIntervalMs?: number; retryForMs?: number };
}

/** The audit trail of one server process: its writer and retention sweep, started; `stop()` flushes and ends both. */
export function startAudit({ settings, db, hydraAdmin, log, metrics, writer: tuning }: StartAuditOptions): { audit: Audit; stop(): Promise<void> } {
  if (!settings.enabled) return { audit: Audit.off(), stop: async () => {} };
  const store = auditStore(db);
  const names = new ClientNames({ hydraAdmin });
  const writer = new AuditWriter({
    // Idempotent and retryable: a batch that meets a lock or a lost connection is tried again, not lost.
    store: traceAuditInserts(auditInserter(db), sqliteHandleOf(db) ? 'sqlite' : 'postgresql'),
    log,
    ...tuning,
    clientName: (id) => names.nameOf(id),
    onWritten: (n) => metrics.audit('written', n),
    onFailed: (n) => metrics.audit('failed', n),
    onDropped: () => metrics.audit('dropped'),
  });
  const retention = new AuditRetention({ store, days: settings.retentionDays, log });
  retention.start();
  const audit = Audit.over(writer);
  return {
    audit,
    async stop() {
      await retention.stop();
      await audit.stop();
    },
  };
}
