import type { MirrorRegistry } from '../auth/cimd/cimdClients.js';
import type { Db } from './database.js';

/**
 * The `cimd_mirrors` table: each Hydra client this server made from a client
 * metadata document, when it was last sent to authorization and last given
 * tokens (src/auth/cimd/cimdClients.ts deletes the unused ones). Shared by
 * every replica, so one replica's sweep sees another's sign-ins.
 */
export function cimdMirrorsStore(db: Db): MirrorRegistry {
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
