import type { CredentialSealer } from '../connections/sealing.js';
import type { HydraAdmin } from '../hydra/index.js';
import type { Db } from '../store/database.js';
import type { RemovedSubjectsStore } from '../store/removedSubjectsStore.js';
import { kratosSubjectsStore } from '../store/kratosSubjectsStore.js';
import { SUBJECT_TABLES, type SubjectTable } from '../store/subjectData.js';
import type { KratosAdmin } from '../kratos/admin.js';
import { kratosHashFromOurs } from './migrateHash.js';

/**
 * `npm run user -- export-to-kratos`: built-in users (our `users` table) into
 * Kratos, with their password hashes, and their data re-keyed to the new
 * identity id. Kratos's admin create does not take an id (v1.3.1
 * CreateIdentityBody has no `id`), so every moved person gets a new `sub`;
 * the old one is written on the identity as admin metadata
 * (`metadata_admin.hydra_mcp_builtin_sub`) in the same request that creates
 * it. kratos/README.md ("Moving users into Kratos") says why there and not in
 * a table of ours.
 */

/** The `metadata_admin` key naming the built-in sub an identity was moved from. */
export const MOVED_FROM_KEY = 'hydra_mcp_builtin_sub';

export type MoveOutcome =
  | { email: string; oldSub: string; status: 'moved'; newId: string; rows: Record<SubjectTable, number>; resumed: boolean }
  | { email: string; oldSub: string; status: 'skipped'; reason: string }
  | { email: string; oldSub: string; status: 'failed'; error: string };

export interface ExportToKratosOptions {
  db: Db;
  kratos: Pick<KratosAdmin, 'createIdentity' | 'listIdentities'>;
  hydra: Pick<HydraAdmin, 'revokeConsentSessions' | 'revokeLoginSessions'>;
  removed: Pick<RemovedSubjectsStore, 'find'>;
  /** Re-seals connected accounts for the new id (their ciphertexts are bound to the sub); needed only if someone has one. */
  sealer?: CredentialSealer;
  /** Told about each person as they are done (the CLI prints as it goes). */
  onOutcome?: (o: MoveOutcome) => void;
}

/**
 * Move every built-in user, one at a time (a failure is reported and the next
 * one is tried). Per person:
 *
 * 1. an identity in Kratos with this email that we did not create (no, or
 *    another, `hydra_mcp_builtin_sub`) → skipped, nothing changed;
 * 2. otherwise create the identity (email trait, the converted hash, the old
 *    sub as admin metadata), or find the one an interrupted earlier run
 *    created (same email, metadata naming this sub) and finish that;
 * 3. revoke the old sub's Hydra consents (with their tokens) and login
 *    sessions, so apps ask again and get the new sub;
 * 4. in one transaction: every SUBJECT_TABLES row of the old sub re-keyed to
 *    the new id, and our `users` row deleted (it is in Kratos now);
 * 5. revoke at Hydra again: a built-in sign-in that completed during 3–4 got
 *    a consent for the old sub; with the row gone none can succeed.
 *
 * A re-run finds nobody left in `users` for those moved; a crash between 2
 * and 4 is finished by the re-run (step 2's second case).
 */
export async function exportUsersToKratos(options: ExportToKratosOptions): Promise<MoveOutcome[]> {
  const { db, kratos, hydra, removed } = options;
  const users = await db.selectFrom('users').select(['id', 'email', 'password_hash']).orderBy('email').execute();
  const outcomes: MoveOutcome[] = [];
  for (const user of users) {
    const outcome = await moveOne(user).catch(
      (e: unknown): MoveOutcome => ({ email: user.email, oldSub: user.id, status: 'failed', error: e instanceof Error ? e.message : String(e) }),
    );
    outcomes.push(outcome);
    options.onOutcome?.(outcome);
  }
  return outcomes;

  async function moveOne(user: { id: string; email: string; password_hash: string }): Promise<MoveOutcome> {
    const base = { email: user.email, oldSub: user.id };
    if (await removed.find(user.id)) {
      return { ...base, status: 'skipped', reason: `a removal of this account is recorded; finish it first (npm run user -- remove ${user.email})` };
    }
    const { identities } = await kratos.listIdentities({ identifier: user.email, pageSize: 1 });
    const existing = identities[0];
    let newId: string;
    let resumed = false;
    if (existing) {
      if (existing.metadata_admin?.[MOVED_FROM_KEY] !== user.id) {
        return { ...base, status: 'skipped', reason: `an identity with this email already exists in Kratos (id ${existing.id}); left as it is` };
      }
      newId = existing.id;
      resumed = true;
    } else {
      const hashed_password = kratosHashFromOurs(user.password_hash);
      const created = await kratos.createIdentity({
        traits: { email: user.email },
        credentials: { password: { config: { hashed_password } } },
        metadata_admin: { [MOVED_FROM_KEY]: user.id },
      });
      newId = created.id;
    }
    const revoke = async () => {
      await hydra.revokeConsentSessions(user.id);
      await hydra.revokeLoginSessions(user.id);
    };
    await revoke();
    const rows = await moveSubjectData(db, user.id, newId, options.sealer);
    // Again, as account removal does: a built-in sign-in that completed while the users row still existed got a new consent.
    await revoke();
    return { ...base, status: 'moved', newId, rows, resumed };
  }
}

type Trx = Parameters<Parameters<ReturnType<Db['transaction']>['execute']>[0]>[0];

/** How each subject table's rows follow a person to a new sub (a new table in SUBJECT_TABLES must say, or this does not compile). */
const MOVERS: Record<SubjectTable, (trx: Trx, from: string, to: string, sealer: CredentialSealer | undefined) => Promise<number>> = {
  notes: async (trx, from, to) => Number((await trx.updateTable('notes').set({ sub: to }).where('sub', '=', from).executeTakeFirst()).numUpdatedRows),
  records: async (trx, from, to) => Number((await trx.updateTable('records').set({ sub: to }).where('sub', '=', from).executeTakeFirst()).numUpdatedRows),
  // Ciphertexts are bound to (sub, provider): open under the old sub, seal under the new.
  connections: async (trx, from, to, sealer) => {
    const rows = await trx.selectFrom('connections').select(['provider', 'sealed']).where('sub', '=', from).execute();
    if (rows.length && !sealer) throw new Error(`${rows.length} connected account(s) need CONNECTIONS_FILE and CONNECTION_KEYS to be re-sealed for the new id`);
    for (const row of rows) {
      const secret = await sealer!.open(row.sealed, { sub: from, provider: row.provider });
      const sealed = await sealer!.seal(secret, { sub: to, provider: row.provider });
      await trx
        .updateTable('connections')
        .set({ sub: to, sealed, key_id: sealer!.newestKeyId })
        .where('sub', '=', from)
        .where('provider', '=', row.provider)
        .execute();
    }
    return rows.length;
  },
  // Connect attempts in flight are bookkeeping (minutes long, and sealed to the old sub): dropped, not moved.
  connect_states: async (trx, from) => Number((await trx.deleteFrom('connect_states').where('sub', '=', from).executeTakeFirst()).numDeletedRows),
  // The identity is a Kratos one from now on: the identity sweep watches it (a built-in sub has no row to move).
  // A session is bound to the sub that opened it; the new sub's tokens could not use it: ended, not moved.
  mcp_sessions: async (trx, from) => Number((await trx.deleteFrom('mcp_sessions').where('sub', '=', from).executeTakeFirst()).numDeletedRows),
  // What those sessions' streams carried goes with them.
  mcp_stream_events: async (trx, from) => Number((await trx.deleteFrom('mcp_stream_events').where('sub', '=', from).executeTakeFirst()).numDeletedRows),
  kratos_subjects: async (trx, from, to) => {
    await trx.deleteFrom('kratos_subjects').where('sub', '=', from).execute();
    await kratosSubjectsStore(trx).record(to, new Date());
    return 1;
  },
};

/**
 * Re-key everything of `from` to `to` and delete the built-in account `from`,
 * in one transaction: all of it or none. Returns rows moved per table
 * (connect_states: dropped).
 */
export async function moveSubjectData(db: Db, from: string, to: string, sealer?: CredentialSealer): Promise<Record<SubjectTable, number>> {
  if (!from || !to || from === to) throw new TypeError('moveSubjectData: two different non-empty subs are needed');
  return db.transaction().execute(async (trx) => {
    const counts = {} as Record<SubjectTable, number>;
    for (const table of SUBJECT_TABLES) counts[table] = await MOVERS[table](trx, from, to, sealer);
    await trx.deleteFrom('users').where('id', '=', from).execute();
    return counts;
  });
}
