import type { ScopedStore } from '../store/scopedStore.js';
import { recording, SpanKind, tracingEnabled, withSpan } from './spans.js';

/** The database behind a store, as OpenTelemetry names it (db.system.name). */
export type DbSystem = 'sqlite' | 'postgresql';

/**
 * A tool's store whose every call is a client span `<method> <store>`
 * ("put records", "list notes"): Kysely has no OpenTelemetry plugin, and a
 * span per store call says more than one per SQL statement. Only the store,
 * the method and the database are recorded, never the sub, collection, key
 * or value. Tracing off, or the call not sampled: the store itself.
 */
export function traceScopedStore(store: ScopedStore, system: DbSystem): ScopedStore {
  // Made once per call: an unsampled call keeps the plain store.
  if (!recording()) return store;
  return {
    notes: traceMethods(store.notes, 'notes', system),
    records: (collection) => traceMethods(store.records(collection), 'records', system),
  };
}

/**
 * The audit writer's inserts, each batch a trace of its own (root): batches
 * are written off the request path, for many requests at once.
 */
export function traceAuditInserts<T extends { insertMany(events: readonly unknown[]): Promise<void> }>(inserter: T, system: DbSystem): T {
  if (!tracingEnabled()) return inserter;
  const insertMany = inserter.insertMany.bind(inserter);
  return Object.assign(Object.create(inserter) as T, {
    insertMany: (events: readonly unknown[]) =>
      withSpan('insert audit_events', { kind: SpanKind.CLIENT, root: true, attributes: dbAttributes(system, 'insert', 'audit_events', { 'db.operation.batch.size': events.length }) }, () =>
        insertMany(events),
      ),
  });
}

function traceMethods<T extends object>(target: T, name: string, system: DbSystem): T {
  const traced = {} as Record<string, unknown>;
  for (const [method, value] of Object.entries(target)) {
    traced[method] =
      typeof value === 'function'
        ? (...args: unknown[]) => withSpan(`${method} ${name}`, { kind: SpanKind.CLIENT, attributes: dbAttributes(system, method, name) }, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args))
        : value;
  }
  return traced as T;
}

const dbAttributes = (system: DbSystem, operation: string, collection: string, more: Record<string, number> = {}) => ({
  'db.system.name': system,
  'db.operation.name': operation,
  'db.collection.name': collection,
  ...more,
});
