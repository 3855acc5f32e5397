import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './database.js';

/**
 * The schema, as migrations kept in code (so the compiled build and tsx see
 * the same list). Timestamps are ISO-8601 text in both dialects: sortable and
 * identical whichever database is underneath.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_users_and_notes': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('email', 'text', (c) => c.notNull().unique())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP`))
          .execute();
        await db.schema
          .createTable('notes')
          // Insertion order, for stable listing; each dialect spells it its own way.
          .addColumn('seq', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('id', 'text', (c) => c.notNull().unique())
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP`))
          .execute();
        // Every note query is keyed by sub; this index serves them all.
        await db.schema.createIndex('notes_sub_seq').on('notes').columns(['sub', 'seq']).execute();
      },
    },
    '0002_records': {
      async up(db: Kysely<any>) {
        // Per-user JSON records for tools that need storage without a migration of their own.
        await db.schema
          .createTable('records')
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('collection', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('records_pk', ['sub', 'collection', 'key'])
          .execute();
      },
    },
    '0003_removed_subjects': {
      async up(db: Kysely<any>) {
        // Subjects whose account is being or was removed (src/account/): written
        // first by a removal, read by every replica to refuse the sub's tokens.
        await db.schema
          .createTable('removed_subjects')
          .addColumn('sub', 'text', (c) => c.primaryKey())
          .addColumn('email_digest', 'text', (c) => c.notNull())
          .addColumn('removed_at', 'text', (c) => c.notNull())
          .addColumn('completed_at', 'text')
          .execute();
        await db.schema.createIndex('removed_subjects_email_digest').on('removed_subjects').column('email_digest').execute();
        await db.schema.createIndex('removed_subjects_removed_at').on('removed_subjects').column('removed_at').execute();
      },
    },
    '0004_notes_keyset_index': {
      async up(db: Kysely<any>) {
        // Keyset pages of notes (notesStore.page): newest or oldest first by
        // (created_at, id) within one sub; each page is one range scan of this index.
        await db.schema.createIndex('notes_sub_created_at_id').on('notes').columns(['sub', 'created_at', 'id']).execute();
      },
    },
    '0005_rate_counters': {
      async up(db: Kysely<any>) {
        // Hit counters every replica shares (src/store/windowCounters.ts; token buckets too, src/store/tokenBuckets.ts). Times are
        // epoch milliseconds, not ISO text: the window arithmetic happens in SQL.
        await db.schema
          .createTable('rate_counters')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('hits', 'integer', (c) => c.notNull())
          .addColumn('reset_at', 'bigint', (c) => c.notNull())
          .execute();
        // The sweep deletes ended windows by this index.
        await db.schema.createIndex('rate_counters_reset_at').on('rate_counters').column('reset_at').execute();
      },
    },
    '0006_connections': {
      async up(db: Kysely<any>) {
        // Credentials people granted us at other services (src/store/connectionsStore.ts),
        // one row per (sub, provider), the tokens sealed by src/connections/sealing.ts.
        // Times are epoch milliseconds except expires_at (epoch seconds, as OAuth counts).
        await db.schema
          .createTable('connections')
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('sealed', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('scope', 'text')
          .addColumn('expires_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          // The refresh lease (src/store/connectionsStore.ts withRefreshLock): until when, and whose.
          .addColumn('refresh_lease_until', 'bigint')
          .addColumn('refresh_lease_owner', 'text')
          .addPrimaryKeyConstraint('connections_pk', ['sub', 'provider'])
          .execute();
        // Re-encryption finds the rows not yet sealed with the newest key by this index.
        await db.schema.createIndex('connections_key_id').on('connections').column('key_id').execute();
        // Connect attempts in flight: single use, found by the hash of their `state`.
        await db.schema
          .createTable('connect_states')
          .addColumn('state_hash', 'text', (c) => c.primaryKey())
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('sealed_verifier', 'text', (c) => c.notNull())
          .addColumn('browser_binding_hash', 'text', (c) => c.notNull())
          .addColumn('elicitation_id', 'text')
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        // Removing a person deletes by sub; the sweep deletes by expiry.
        await db.schema.createIndex('connect_states_sub').on('connect_states').column('sub').execute();
        await db.schema.createIndex('connect_states_expires_at').on('connect_states').column('expires_at').execute();
      },
    },
    '0007_audit_events': {
      async up(db: Kysely<any>) {
        // The audit trail (src/store/auditStore.ts, src/audit/): one row per tool call or
        // account event. Times are ISO-8601 text with milliseconds, like the other tables.
        await db.schema
          .createTable('audit_events')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('request_id', 'text')
          // Null only for a failed sign-in of an unknown account.
          .addColumn('sub', 'text')
          .addColumn('client_id', 'text')
          .addColumn('client_name', 'text')
          .addColumn('tool', 'text')
          .addColumn('scopes', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('duration_ms', 'integer')
          .addColumn('transport', 'text')
          .addColumn('detail', 'text')
          .execute();
        // A person's Activity page (keyset, newest first); the operator's per-client query; the retention sweep.
        await db.schema.createIndex('audit_events_sub_at_id').on('audit_events').columns(['sub', 'at', 'id']).execute();
        await db.schema.createIndex('audit_events_client_id_at').on('audit_events').columns(['client_id', 'at']).execute();
        await db.schema.createIndex('audit_events_at').on('audit_events').column('at').execute();
      },
    },
    '0008_kratos_subjects': {
      async up(db: Kysely<any>) {
        // IDENTITY=kratos: every identity that signed in here, so an identity
        // deleted in Kratos is found and its access ended (src/account/identitySweep.ts).
        await db.schema
          .createTable('kratos_subjects')
          .addColumn('sub', 'text', (c) => c.primaryKey())
          .addColumn('first_seen_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0009_removed_subjects_completed_at': {
      async up(db: Kysely<any>) {
        // The refusal list reads removals by completion, and prunes by it (issue 26 #12).
        await db.schema.createIndex('removed_subjects_completed_at').on('removed_subjects').column('completed_at').execute();
      },
    },
    '0010_kratos_subjects_suspension': {
      async up(db: Kysely<any>) {
        // An identity deactivated in Kratos is suspended here (src/account/accountSuspension.ts):
        // its tokens refused while suspended, and those issued before a reactivation after it.
        await db.schema.alterTable('kratos_subjects').addColumn('suspended_at', 'text').execute();
        await db.schema.alterTable('kratos_subjects').addColumn('revoked_at', 'text').execute();
        await db.schema.alterTable('kratos_subjects').addColumn('reactivated_at', 'text').execute();
        // Every replica reads both lists every few seconds (src/account/removedSubjects.ts): ranges, not scans.
        await db.schema.createIndex('kratos_subjects_suspended_at').on('kratos_subjects').column('suspended_at').execute();
        await db.schema.createIndex('kratos_subjects_reactivated_at').on('kratos_subjects').column('reactivated_at').execute();
      },
    },
    '0011_single_use_ids': {
      async up(db: Kysely<any>) {
        // Ids that may be used once (src/store/singleUseIds.ts), e.g. the nonce of a 2026
        // requestState: recorded on first use, so a replay on any replica is refused.
        await db.schema
          .createTable('single_use_ids')
          .addColumn('id', 'text', (c) => c.primaryKey())
          // Epoch milliseconds: after it the id is refused anyway (its token expired), so the row may go.
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('single_use_ids_expires_at').on('single_use_ids').column('expires_at').execute();
      },
    },
    '0012_cimd_mirrors': {
      async up(db: Kysely<any>) {
        // Hydra clients made from client metadata documents, for deleting unused ones (src/auth/cimd/cimdClients.ts).
        await db.schema
          .createTable('cimd_mirrors')
          .addColumn('hydra_id', 'text', (c) => c.primaryKey())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('authorized_at', 'text', (c) => c.notNull())
          .addColumn('token_at', 'text')
          .execute();
        await db.schema.createIndex('cimd_mirrors_authorized_at').on('cimd_mirrors').column('authorized_at').execute();
      },
    },
    '0013_mcp_sessions': {
      async up(db: Kysely<any>) {
        // 2025-era MCP sessions every replica can serve (src/store/mcpSessionsStore.ts).
        await db.schema
          .createTable('mcp_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('client_id', 'text', (c) => c.notNull())
          .addColumn('protocol_version', 'text', (c) => c.notNull())
          .addColumn('client_capabilities', 'text', (c) => c.notNull())
          .addColumn('client_info', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
          .execute();
        // The per-person cap (a person's sessions by recency) and the idle sweep: ranges, not scans.
        await db.schema.createIndex('mcp_sessions_sub_last_seen').on('mcp_sessions').columns(['sub', 'last_seen_at']).execute();
        await db.schema.createIndex('mcp_sessions_last_seen').on('mcp_sessions').column('last_seen_at').execute();
      },
    },
    '0014_mcp_stream_events': {
      async up(db: Kysely<any>) {
        // What each session's SSE streams carried, so a client resumes with Last-Event-ID on any replica (src/store/mcpStreamEventsStore.ts).
        await db.schema
          .createTable('mcp_stream_events')
          .addColumn('session_id', 'text', (c) => c.notNull())
          .addColumn('stream_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addColumn('sub', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('mcp_stream_events_pk', ['session_id', 'stream_id', 'seq'])
          .execute();
        // Removal by person and the retention sweep: ranges, not scans.
        await db.schema.createIndex('mcp_stream_events_sub').on('mcp_stream_events').column('sub').execute();
        await db.schema.createIndex('mcp_stream_events_created_at').on('mcp_stream_events').column('created_at').execute();
      },
    },
  };
}

/** Names of migrations not yet applied (for readiness checks). */
export async function pendingMigrations(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const all = await new Migrator({ db, provider }).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/**
 * Bring the schema up to date and return the names of the migrations this
 * call applied, in order (none when it was up to date); throws naming the
 * failing migration. Safe to run from several replicas or processes at once:
 * on PostgreSQL Kysely takes an advisory transaction lock first; on SQLite
 * its lock is a no-op (it assumes one connection), so a run that loses the
 * race to another process (its transaction rolled back: busy, or a table the
 * other just created) is retried (see migrateSqlite).
 */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  return dialect === 'sqlite' ? migrateSqlite(db) : migrateOnce(db, dialect);
}

async function migrateOnce(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'before any migration ran';
    throw new Error(`database migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * SQLite: all pending migrations run in one transaction, so a run that fails
 * leaves nothing behind. Retried (up to ~15 s) only while that failure is
 * another process's doing: the file was busy, or the pending list shrank
 * meanwhile. A migration that fails by itself fails at once, as on PostgreSQL.
 * Hand-written: Kysely's SQLite adapter has no cross-process lock to reuse.
 */
async function migrateSqlite(db: Kysely<any>): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const before = await pendingMigrations(db, 'sqlite');
    try {
      return await migrateOnce(db, 'sqlite');
    } catch (e) {
      const code = String((e as { cause?: { code?: unknown } }).cause?.code ?? '');
      const raced = code.startsWith('SQLITE_BUSY') || (await pendingMigrations(db, 'sqlite')).length < before.length;
      if (!raced || attempt >= 30) throw e;
      await new Promise((r) => setTimeout(r, 50 * Math.min(attempt, 10)));
    }
  }
}
