import type { Db } from './database.js';

/** A JSON-serialisable value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * Named collections of JSON records for one user, for tools that need to keep
 * data without adding a table. Like every store here it is built for one
 * `sub`: no method can name another user.
 */
export interface RecordsStore {
  put(key: string, value: Json): Promise<void>;
  get<T extends Json = Json>(key: string): Promise<T | undefined>;
  /** Records in key order, optionally only keys starting with `prefix`. */
  list<T extends Json = Json>(opts?: { prefix?: string; limit?: number }): Promise<{ key: string; value: T }[]>;
  /**
   * One page in key order, starting after the key `after` (exclusive): a
   * keyset read of at most `limit` + 1 rows. `next` is the key to continue
   * from, absent on the last page.
   */
  page<T extends Json = Json>(opts: { limit: number; prefix?: string; after?: string }): Promise<{ records: { key: string; value: T }[]; next?: string }>;
  delete(key: string): Promise<boolean>;
}

const NAME = /^[a-z0-9][a-z0-9_.:-]{0,63}$/;
const MAX_KEY = 256;
const MAX_VALUE_BYTES = 256 * 1024;
/** Largest page `page()` reads. */
export const MAX_RECORDS_PAGE = 1000;

/** Bad input to a records store: a wrong collection name, key or value. */
export class RecordsInputError extends TypeError {
  override name = 'RecordsInputError';
}

export function recordsStoreFor(db: Db, sub: string, collection: string): RecordsStore {
  if (!sub) throw new TypeError('recordsStoreFor: sub must be a non-empty string');
  if (!NAME.test(collection)) throw new RecordsInputError(`collection ${JSON.stringify(collection)} must match ${NAME}`);
  const checkKey = (key: string) => {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY) {
      throw new RecordsInputError(`key must be a string of 1 to ${MAX_KEY} characters`);
    }
  };
  const scope = { sub, collection };
  return {
    async put(key, value) {
      checkKey(key);
      const text = JSON.stringify(value);
      if (text === undefined) throw new RecordsInputError('value must be JSON');
      if (Buffer.byteLength(text) > MAX_VALUE_BYTES) throw new RecordsInputError(`value is larger than ${MAX_VALUE_BYTES} bytes`);
      const row = { ...scope, key, value: text, updated_at: new Date().toISOString() };
      await db
        .insertInto('records')
        .values(row)
        .onConflict((oc) => oc.columns(['sub', 'collection', 'key']).doUpdateSet({ value: row.value, updated_at: row.updated_at }))
        .execute();
    },
    async get<T extends Json>(key: string) {
      checkKey(key);
      const row = await db
        .selectFrom('records')
        .select('value')
        .where('sub', '=', sub)
        .where('collection', '=', collection)
        .where('key', '=', key)
        .executeTakeFirst();
      return row ? (JSON.parse(row.value) as T) : undefined;
    },
    async list<T extends Json>({ prefix, limit = 100 }: { prefix?: string; limit?: number } = {}) {
      let q = db.selectFrom('records').select(['key', 'value']).where('sub', '=', sub).where('collection', '=', collection);
      // Range instead of LIKE: no wildcard escaping, same meaning in both dialects.
      if (prefix) q = q.where('key', '>=', prefix).where('key', '<', `${prefix}\uffff`);
      const rows = await q.orderBy('key').limit(Math.min(Math.max(limit, 1), 1000)).execute();
      return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
    },
    async page<T extends Json>({ limit, prefix, after }: { limit: number; prefix?: string; after?: string }) {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RECORDS_PAGE) {
        throw new RecordsInputError(`page limit must be an integer from 1 to ${MAX_RECORDS_PAGE}`);
      }
      let q = db.selectFrom('records').select(['key', 'value']).where('sub', '=', sub).where('collection', '=', collection);
      if (prefix) q = q.where('key', '>=', prefix).where('key', '<', `${prefix}\uffff`);
      // The primary key (sub, collection, key) serves this range read.
      if (after !== undefined) q = q.where('key', '>', after);
      const rows = await q.orderBy('key').limit(limit + 1).execute();
      const records = rows.slice(0, limit).map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
      const last = records[records.length - 1];
      return rows.length > limit && last ? { records, next: last.key } : { records };
    },
    async delete(key) {
      checkKey(key);
      const r = await db
        .deleteFrom('records')
        .where('sub', '=', sub)
        .where('collection', '=', collection)
        .where('key', '=', key)
        .executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
