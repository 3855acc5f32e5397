import type { Db } from './database.js';

/** The mirrors' registry as src/auth/cimd/cimdClients.ts uses it (its `MirrorRegistry`). */
export interface CimdMirrorsStore {
  /** Note an authorization with the mirror; true when it was not listed before. */
  authorizing(hydraId: string, url: string, at: Date): Promise<boolean>;
  tokenIssued(hydraId: string, at: Date): Promise<void>;
  countNeverUsed(): Promise<number>;
  expired(quietSince: Date, idleSince: Date, limit: number): Promise<string[]>;
  unlistIfExpired(hydraId: string, quietSince: Date, idleSince: Date): Promise<boolean>;
}

/**
 * The `cimd_mirrors` table: each Hydra client this server made from a client
 * metadata document, when it was last sent to authorization and last given
 * tokens (src/auth/cimd/cimdClients.ts deletes the unused ones). Shared by
 * every replica, so one replica's sweep sees another's sign-ins.
 */
export function cimdMirrorsStore(db: Db): CimdMirrorsStore {
  return {
    async authorizing(hydraId, url, at) {
      const inserted = await db
        .insertInto('cimd_mirrors')
        .values({ hydra_id: hydraId, url, authorized_at: at.toISOString(), token_at: null })
        .onConflict((oc) => oc.column('hydra_id').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return true;
      await db.updateTable('cimd_mirrors').set({ authorized_at: at.toISOString() }).where('hydra_id', '=', hydraId).execute();
      return false;
    },
    async tokenIssued(hydraId, at) {
      await db.updateTable('cimd_mirrors').set({ token_at: at.toISOString() }).where('hydra_id', '=', hydraId).execute();
    },
    async countNeverUsed() {
      const row = await db.selectFrom('cimd_mirrors').select((eb) => eb.fn.countAll<number | string>().as('n')).where('token_at', 'is', null).executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async expired(quietSince, idleSince, limit) {
      const rows = await db
        .selectFrom('cimd_mirrors')
        .select('hydra_id')
        .where((eb) => eb.and([eb('authorized_at', '<', quietSince.toISOString()), eb.or([eb('token_at', 'is', null), eb('token_at', '<', idleSince.toISOString())])]))
        .orderBy('authorized_at')
        .limit(limit)
        .execute();
      return rows.map((r) => r.hydra_id);
    },
    async unlistIfExpired(hydraId, quietSince, idleSince) {
      const result = await db
        .deleteFrom('cimd_mirrors')
        .where('hydra_id', '=', hydraId)
        .where((eb) => eb.and([eb('authorized_at', '<', quietSince.toISOString()), eb.or([eb('token_at', 'is', null), eb('token_at', '<', idleSince.toISOString())])]))
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}
