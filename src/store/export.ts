import type { Db } from './database.js';
import type { Json } from './recordsStore.js';
import type { SubjectTable } from './subjectData.js';

/** Names the document, so a reader years later knows what it holds. */
export const EXPORT_FORMAT = 'hydra-mcp-export';
/** Raised when the document's shape changes incompatibly. */
export const EXPORT_VERSION = 1;

export interface ExportOptions {
  /** Rows read per query: a page at a time, so an account of any size is never held in memory. */
  pageSize?: number;
  now?: () => Date;
}

/** Reads one collection of `sub`, a page (at most `limit` rows) at a time. */
type CollectionReader = (db: Db, sub: string, limit: number) => AsyncGenerator<Json[], void, undefined>;

/**
 * One reader per table in SUBJECT_TABLES. Typed by that list, so a table added
 * there (and so deleted when a person is removed) does not compile until its
 * export is written here too: what we delete is what we hand back. Each pages
 * by keyset on an indexed order, never OFFSET.
 */
const COLLECTIONS: { [T in SubjectTable]: CollectionReader } = {
  // Insertion order: `seq` (index notes_sub_seq).
  async *notes(db, sub, limit) {
    let after: string | number | undefined;
    for (;;) {
      let q = db.selectFrom('notes').select(['seq', 'id', 'title', 'body', 'created_at']).where('sub', '=', sub);
      if (after !== undefined) q = q.where('seq', '>', after);
      const rows = await q.orderBy('seq').limit(limit).execute();
      if (rows.length) yield rows.map((r) => ({ id: r.id, title: r.title, body: r.body, createdAt: r.created_at }));
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!.seq;
    }
  },
  // Primary-key order: (sub, collection, key).
  async *records(db, sub, limit) {
    let after: { collection: string; key: string } | undefined;
    for (;;) {
      let q = db.selectFrom('records').select(['collection', 'key', 'value', 'updated_at']).where('sub', '=', sub);
      if (after) {
        const { collection, key } = after;
        q = q.where((eb) => eb.or([eb('collection', '>', collection), eb.and([eb('collection', '=', collection), eb('key', '>', key)])]));
      }
      const rows = await q.orderBy('collection').orderBy('key').limit(limit).execute();
      // Stored by RecordsStore.put as JSON text: handed back as the value itself.
      if (rows.length) yield rows.map((r) => ({ collection: r.collection, key: r.key, value: JSON.parse(r.value) as Json, updatedAt: r.updated_at }));
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!;
    }
  },
  // Which services are connected, by provider (primary key order); never the sealed credential.
  async *connections(db, sub, limit) {
    let after: string | undefined;
    for (;;) {
      let q = db.selectFrom('connections').select(['provider', 'status', 'scope', 'expires_at', 'created_at', 'updated_at']).where('sub', '=', sub);
      if (after !== undefined) q = q.where('provider', '>', after);
      const rows = await q.orderBy('provider').limit(limit).execute();
      if (rows.length) {
        yield rows.map((r) => ({
          provider: r.provider,
          status: r.status,
          scope: r.scope,
          accessTokenExpiresAt: r.expires_at === null ? null : new Date(Number(r.expires_at) * 1000).toISOString(),
          createdAt: new Date(Number(r.created_at)).toISOString(),
          updatedAt: new Date(Number(r.updated_at)).toISOString(),
        }));
      }
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!.provider;
    }
  },
  // Connect attempts still pending: provider and expiry only (the state and PKCE verifier are secrets).
  async *connect_states(db, sub, limit) {
    let after: string | undefined;
    for (;;) {
      let q = db.selectFrom('connect_states').select(['state_hash', 'provider', 'expires_at']).where('sub', '=', sub);
      if (after !== undefined) q = q.where('state_hash', '>', after);
      const rows = await q.orderBy('state_hash').limit(limit).execute();
      if (rows.length) yield rows.map((r) => ({ provider: r.provider, expiresAt: new Date(Number(r.expires_at)).toISOString() }));
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!.state_hash;
    }
  },
  // IDENTITY=kratos: when this identity first and last signed in here.
  async *kratos_subjects(db, sub) {
    const rows = await db.selectFrom('kratos_subjects').select(['first_seen_at', 'last_seen_at']).where('sub', '=', sub).execute();
    if (rows.length) yield rows.map((r) => ({ firstSignedInAt: r.first_seen_at, lastSignedInAt: r.last_seen_at }));
  },
  // Open MCP sessions, by the app that opened them; their ids are left out (each
  // still admits requests with the person's token until it ends).
  async *mcp_sessions(db, sub, limit) {
    let after: string | undefined;
    for (;;) {
      let q = db.selectFrom('mcp_sessions').select(['id', 'client_id', 'protocol_version', 'client_info', 'created_at', 'last_seen_at']).where('sub', '=', sub);
      if (after !== undefined) q = q.where('id', '>', after);
      const rows = await q.orderBy('id').limit(limit).execute();
      if (rows.length)
        yield rows.map((r) => ({
          clientId: r.client_id,
          protocolVersion: r.protocol_version,
          clientInfo: JSON.parse(r.client_info) as Json,
          openedAt: new Date(Number(r.created_at)).toISOString(),
          lastSeenAt: new Date(Number(r.last_seen_at)).toISOString(),
        }));
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!.id;
    }
  },
  // What those sessions' streams carried in the last minutes (kept for resuming), in
  // primary-key order; the session and stream ids are left out, as above.
  async *mcp_stream_events(db, sub, limit) {
    let after: { session_id: string; stream_id: string; seq: number | string } | undefined;
    for (;;) {
      let q = db.selectFrom('mcp_stream_events').select(['session_id', 'stream_id', 'seq', 'message', 'created_at']).where('sub', '=', sub);
      if (after) {
        const { session_id, stream_id, seq } = after;
        q = q.where((eb) =>
          eb.or([
            eb('session_id', '>', session_id),
            eb.and([eb('session_id', '=', session_id), eb('stream_id', '>', stream_id)]),
            eb.and([eb('session_id', '=', session_id), eb('stream_id', '=', stream_id), eb('seq', '>', seq)]),
          ]),
        );
      }
      const rows = await q.orderBy('session_id').orderBy('stream_id').orderBy('seq').limit(limit).execute();
      if (rows.length) yield rows.map((r) => ({ message: JSON.parse(r.message) as Json, sentAt: new Date(Number(r.created_at)).toISOString() }));
      if (rows.length < limit) return;
      after = rows[rows.length - 1]!;
    }
  },
};

/**
 * Everything stored for `sub`, as one JSON document produced piece by piece
 * (each piece a string; their concatenation parses with JSON.parse):
 *
 *     { "format": "hydra-mcp-export", "version": 1, "exportedAt": "…",
 *       "sub": "…", "account": { "email": "…", "createdAt": "…" } | null,
 *       "notes": [ … ], "records": [ … ] }
 *
 * Every collection is always present, empty when the person has nothing in
 * it. The password hash is never included. Pages are read one after another,
 * not in one transaction: a write during a long export may or may not appear.
 * The first piece is produced only after the account row was read, so a
 * caller that awaits it learns of an unreachable database before it commits
 * to sending anything.
 */
export async function* exportSubjectData(db: Db, sub: string, options: ExportOptions = {}): AsyncGenerator<string, void, undefined> {
  if (!sub) throw new TypeError('exportSubjectData: sub must be a non-empty string');
  const pageSize = options.pageSize ?? 500;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new TypeError('exportSubjectData: pageSize must be a positive integer');
  const exportedAt = (options.now?.() ?? new Date()).toISOString();
  const row = await db.selectFrom('users').select(['email', 'created_at']).where('id', '=', sub).executeTakeFirst();
  const account = row ? { email: row.email, createdAt: row.created_at } : null;
  const field = (name: string, value: Json) => `  ${JSON.stringify(name)}: ${JSON.stringify(value)},\n`;
  yield `{\n${field('format', EXPORT_FORMAT)}${field('version', EXPORT_VERSION)}${field('exportedAt', exportedAt)}${field('sub', sub)}${field('account', account)}`;
  const names = Object.keys(COLLECTIONS) as SubjectTable[];
  for (const [i, name] of names.entries()) {
    yield `  ${JSON.stringify(name)}: [`;
    let first = true;
    for await (const items of COLLECTIONS[name](db, sub, pageSize)) {
      yield `${first ? '' : ','}\n${items.map((item) => `    ${JSON.stringify(item)}`).join(',\n')}`;
      first = false;
    }
    yield `${first ? '' : '\n  '}]${i < names.length - 1 ? ',' : ''}\n`;
  }
  yield '}\n';
}
