import { PostgresAdapter, type RawBuilder, sql } from 'kysely';
import { type Db, sqliteHandleOf } from './database.js';
import { checkKey, type RateCountersOptions, sweepEnded, sweeper } from './rateCountersTable.js';

/** One token bucket: holds at most `burst` tokens; one comes back every `intervalMs`. */
export interface BucketSpec {
  key: string;
  /** Milliseconds per token (60 000 / requests per minute, whole ms). */
  intervalMs: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  burst: number;
}

/** What a take decided. */
export interface TakeResult {
  admitted: boolean;
  /** Tokens granted by every bucket of the chain (`need` … `want`); 0 when refused. */
  granted: number;
  /** Index (in the buckets given) of the bucket that refused; absent when admitted. */
  refusedBy?: number;
  /**
   * When refused: milliseconds until the refusing bucket holds `need` tokens again (for a
   * `need` larger than its burst, which it never holds: the time a full bucket takes); 0 when admitted.
   */
  retryAfterMs: number;
}

/**
 * Token buckets every replica shares. `take` asks each bucket in order for up
 * to `want` tokens (default 1) and at least `need` (default 1: a batch of N
 * messages needs N), the next bucket for as many as the one before granted,
 * and stops at the first that has fewer than `need`: a request refused by its
 * first bucket (the caller's own) spends nothing from the next (its client's),
 * so one caller's flood cannot empty a bucket others share. What a later
 * bucket refuses or grants less of goes back to the ones before, so a refusal
 * by the client's bucket costs the caller's own nothing either.
 */
export interface TokenBuckets {
  take(buckets: readonly BucketSpec[], now: number, want?: number, need?: number): Promise<TakeResult>;
}

function checkBuckets(buckets: readonly BucketSpec[], now: number, want: number, need: number): void {
  if (buckets.length === 0) throw new TypeError('token bucket take needs at least one bucket');
  if (!Number.isSafeInteger(now)) throw new TypeError(`token bucket now must be an integer (ms), got ${now}`);
  if (!Number.isSafeInteger(want) || want < 1) throw new TypeError(`token bucket want must be a positive integer, got ${want}`);
  if (!Number.isSafeInteger(need) || need < 1 || need > want) throw new TypeError(`token bucket need must be an integer from 1 to want (${want}), got ${need}`);
  for (const b of buckets) {
    checkKey(b.key);
    if (!Number.isSafeInteger(b.intervalMs) || b.intervalMs < 1) throw new TypeError(`token bucket intervalMs must be a positive integer, got ${b.intervalMs}`);
    if (!Number.isSafeInteger(b.burst) || b.burst < 1) throw new TypeError(`token bucket burst must be a positive integer, got ${b.burst}`);
  }
  if (new Set(buckets.map((b) => b.key)).size !== buckets.length) throw new TypeError('token bucket keys of one take must differ');
}

/**
 * GCRA (the generic cell rate algorithm): a token bucket kept as one number,
 * the time the bucket is full again ("theoretical arrival time", TAT). Brought
 * up to now, the tokens in it are (now + burst·interval − TAT) / interval; a
 * take of k moves the TAT k intervals on. Stored in `rate_counters.reset_at`,
 * so a row whose time has passed is a full bucket, the same as no row, and the
 * counters' sweep removes it. `hits` holds the tokens the last take granted
 * (0: refused), which is how RETURNING tells; on insert it is the number asked
 * for, read back as `excluded.hits` by the update. A bucket that holds fewer
 * than `need` grants none. The caller sees to it that `want` (or the grant
 * before, chained) is at least `need` and `need` at most the burst, so an
 * insert (a fresh, full bucket) always grants.
 */
function upsertBucket(t: UpsertTerms, from?: RawBuilder<unknown>): RawBuilder<unknown> {
  const tat = sql`(case when rate_counters.reset_at > ${t.now} then rate_counters.reset_at else ${t.now} end)`;
  const available = sql`((${t.fullAt} - ${tat}) / ${t.intervalMs})`;
  const granted = sql`(case when ${available} < excluded.hits then ${available} else excluded.hits end)`;
  // A fresh bucket grants what is asked (never more than the burst); its TAT starts that many intervals on.
  const row = sql`${t.key}, ${t.asked}, ${t.now} + ${t.asked} * ${t.intervalMs}`;
  // A chained insert selects its row from the previous bucket's grant (PostgreSQL's chain below).
  const source = from ? sql`select ${row} from ${from}` : sql`values (${row})`;
  return sql`insert into rate_counters (key, hits, reset_at) ${source}
    on conflict (key) do update set
      hits = case when ${granted} >= ${t.need} then ${granted} else 0 end,
      reset_at = case when ${granted} >= ${t.need} then ${tat} + ${granted} * ${t.intervalMs} else rate_counters.reset_at end
    returning hits, reset_at`;
}

/**
 * The values of one bucket's upsert, each a SQL expression: `fullAt` is when the bucket would be
 * full if it were empty now (now + burst·interval), `asked` the tokens asked of it (at most its burst).
 */
interface UpsertTerms {
  key: RawBuilder<unknown>;
  now: RawBuilder<unknown>;
  fullAt: RawBuilder<unknown>;
  intervalMs: RawBuilder<unknown>;
  need: RawBuilder<unknown>;
  asked: RawBuilder<unknown>;
}

const int = (n: number) => sql`cast(${n} as bigint)`;

/** The terms as bound values; `want` a number, or (PostgreSQL's chain) an expression over the grant before. */
function boundTerms(b: BucketSpec, now: number, need: number, want: number | RawBuilder<unknown>): UpsertTerms {
  return { key: sql`${b.key}`, now: int(now), fullAt: int(now + b.burst * b.intervalMs), intervalMs: int(b.intervalMs), need: int(need), asked: typeof want === 'number' ? int(Math.min(want, b.burst)) : want };
}

/** The terms as named parameters (SQLite), so the statement's text is the same for every take and is prepared once. */
const NAMED_TERMS: UpsertTerms = {
  key: sql.raw('@key'),
  now: sql.raw('cast(@now as bigint)'),
  fullAt: sql.raw('cast(@fullAt as bigint)'),
  intervalMs: sql.raw('cast(@intervalMs as bigint)'),
  need: sql.raw('cast(@need as bigint)'),
  asked: sql.raw('cast(@asked as bigint)'),
};

/** The named parameters' values for one bucket (what boundTerms binds, for NAMED_TERMS). */
const namedValues = (b: BucketSpec, now: number, need: number, want: number) => ({ key: b.key, now, fullAt: now + b.burst * b.intervalMs, intervalMs: b.intervalMs, need, asked: Math.min(want, b.burst) });

/** Gives tokens back to the bucket at `key`: its full-again time moves back `backMs` (tokens × interval; a time past is a full bucket). */
const refundBucket = (key: RawBuilder<unknown>, backMs: RawBuilder<unknown>): RawBuilder<unknown> => sql`update rate_counters set reset_at = reset_at - ${backMs} where key = ${key}`;

/** A refusal without asking any bucket: `need` is more than bucket `i` ever holds. */
function beyondBurst(buckets: readonly BucketSpec[], need: number): TakeResult | undefined {
  const i = buckets.findIndex((b) => b.burst < need);
  if (i < 0) return undefined;
  return { admitted: false, granted: 0, refusedBy: i, retryAfterMs: buckets[i]!.burst * buckets[i]!.intervalMs };
}

/**
 * The decision from each bucket's row after the take (`hits`: tokens granted; absent: not
 * reached), and what buckets before the last one reached granted beyond the decision, to give
 * back (undefined when nothing is: the common case allocates nothing more).
 */
function decide(buckets: readonly BucketSpec[], rows: ({ hits: unknown; reset_at: unknown } | undefined)[], now: number, need: number): { result: TakeResult; refunds?: [BucketSpec, number][] } {
  let granted = Infinity;
  let result: TakeResult | undefined;
  let reached = 0;
  for (const [i, b] of buckets.entries()) {
    const row = rows[i];
    if (!row) throw new Error(`token bucket ${i} was not taken from although the ones before granted`);
    reached = i + 1;
    const hits = Number(row.hits);
    if (hits < 1) {
      result = { admitted: false, granted: 0, refusedBy: i, retryAfterMs: Number(row.reset_at) - (b.burst - need) * b.intervalMs - now };
      break;
    }
    granted = Math.min(granted, hits);
  }
  result ??= { admitted: true, granted, retryAfterMs: 0 };
  let refunds: [BucketSpec, number][] | undefined;
  for (let i = 0; i < reached; i++) {
    const over = Number(rows[i]!.hits) - result.granted;
    if (over > 0) (refunds ??= []).push([buckets[i]!, over]);
  }
  return refunds ? { result, refunds } : { result };
}

/**
 * Token buckets in the `rate_counters` table. On PostgreSQL a take is one
 * statement however many buckets (each bucket's upsert a CTE that selects its
 * row from the grant of the one before), so one round trip; on SQLite,
 * in-process, one upsert per bucket until one refuses (SQLite has no
 * data-modifying CTEs). Each upsert is atomic (PostgreSQL locks the row;
 * SQLite has one writer): concurrent takes from any number of replicas never
 * grant more than the bucket holds.
 */
export function tokenBucketsStore(db: Db, options: RateCountersOptions = {}): TokenBuckets {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const maybeSweep = sweeper(sweepEnded(db), options.sweepEveryMs ?? 60_000);
  type Row = { hits: unknown; reset_at: unknown };
  // SQLite: the upsert and the refund are prepared once, their values bound by name, so a take builds,
  // compiles and prepares no SQL (Kysely did all three on every execute; compiling alone, to learn the
  // parameters, was a tenth to a third of a take on the server's thread).
  // It runs past Kysely's connection lock: during one of the few transactions (a refresh lock, a data
  // removal, a user import) it joins it, and that transaction's rollback would give the take back.
  // Each upsert is one statement, so it stays atomic.
  const sqlite = sqliteHandleOf(db);
  const upsert = sqlite?.prepare(upsertBucket(NAMED_TERMS).compile(db).sql);
  const giveBack = sqlite?.prepare(refundBucket(sql.raw('@key'), sql.raw('cast(@backMs as bigint)')).compile(db).sql);
  // The refund is a statement of its own (PostgreSQL does not let one statement change a row twice):
  // only when a later bucket refused or granted less, never on the common path.
  const refund = async (refunds: [BucketSpec, number][]) => {
    for (const [b, tokens] of refunds) {
      if (giveBack) giveBack.run({ key: b.key, backMs: tokens * b.intervalMs });
      else await refundBucket(sql`${b.key}`, int(tokens * b.intervalMs)).execute(db);
    }
  };
  return {
    async take(buckets, now, want = 1, need = 1) {
      checkBuckets(buckets, now, want, need);
      const tooMany = beyondBurst(buckets, need);
      if (tooMany) return tooMany;
      await maybeSweep(now);
      let decided: ReturnType<typeof decide>;
      if (!postgres) {
        const rows: Row[] = [];
        let asked = want;
        for (const b of buckets) {
          const row = upsert ? (upsert.get(namedValues(b, now, need, asked)) as Row) : ((await upsertBucket(boundTerms(b, now, need, asked)).execute(db)).rows[0] as Row);
          rows.push(row);
          asked = Number(row.hits);
          if (asked < 1) break;
        }
        decided = decide(buckets, rows, now, need);
      } else {
        const ctes = buckets.map((b, i) => {
          const previous = sql.id(`b${i - 1}`);
          const chained = i === 0 ? undefined : sql`${previous} where ${previous}.hits > 0`;
          const asked = i === 0 ? want : sql`(case when ${previous}.hits < ${b.burst} then ${previous}.hits else ${b.burst} end)`;
          return sql`${sql.id(`b${i}`)} as (${upsertBucket(boundTerms(b, now, need, asked), chained)})`;
        });
        const columns = buckets.map((_, i) => sql`${sql.ref(`b${i}.hits`)} as ${sql.id(`h${i}`)}, ${sql.ref(`b${i}.reset_at`)} as ${sql.id(`r${i}`)}`);
        const joins = buckets.slice(1).map((_, i) => sql`left join ${sql.id(`b${i + 1}`)} on true`);
        const result = await sql<Record<string, unknown>>`with ${sql.join(ctes)} select ${sql.join(columns)} from b0 ${sql.join(joins, sql` `)}`.execute(db);
        const one = result.rows[0];
        if (!one) throw new Error('token bucket take returned no row');
        decided = decide(buckets, buckets.map((_, i) => (one[`h${i}`] == null ? undefined : { hits: one[`h${i}`], reset_at: one[`r${i}`] })), now, need);
      }
      if (decided.refunds) await refund(decided.refunds);
      return decided.result;
    },
  };
}

/** The same buckets in this process's memory (one process, tests). Bounded: past `maxKeys` the oldest keys go first. */
export function memoryTokenBuckets(options: { maxKeys?: number } = {}): TokenBuckets {
  const tats = new Map<string, number>();
  const maxKeys = options.maxKeys ?? 50_000;
  return {
    async take(buckets, now, want = 1, need = 1) {
      checkBuckets(buckets, now, want, need);
      const tooMany = beyondBurst(buckets, need);
      if (tooMany) return tooMany;
      // One process, no await: every bucket is asked first, and only the common grant is taken.
      const rows: { hits: number; reset_at: number }[] = [];
      let asked = want;
      for (const b of buckets) {
        const tat = Math.max(tats.get(b.key) ?? now, now);
        const granted = Math.min(asked, b.burst, Math.floor((now + b.burst * b.intervalMs - tat) / b.intervalMs));
        rows.push({ hits: granted >= need ? granted : 0, reset_at: tat });
        asked = granted;
        if (granted < need) break;
      }
      const { result } = decide(buckets, rows, now, need);
      if (result.admitted) {
        for (const b of buckets) {
          const tat = Math.max(tats.get(b.key) ?? now, now);
          tats.delete(b.key);
          tats.set(b.key, tat + result.granted * b.intervalMs);
          if (tats.size > maxKeys) tats.delete(tats.keys().next().value!);
        }
      }
      return result;
    },
  };
}
