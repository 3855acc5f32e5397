import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAccountSuspension } from '../../../src/account/accountSuspension.js';
import { createIdentitySweep } from '../../../src/account/identitySweep.js';
import { HydraError } from '../../../src/hydra/index.js';
import type { RemovalTarget } from '../../../src/account/accountRemoval.js';
import { KratosError } from '../../../src/kratos/index.js';
import { createLogger } from '../../../src/log/logger.js';
import { type Db, openDatabase } from '../../../src/store/database.js';
import { kratosSubjectsStore } from '../../../src/store/kratosSubjectsStore.js';
import { migrateToLatest } from '../../../src/store/migrations.js';
import { type Backend, storeBackends } from '../../support/backends.js';

/**
 * The identity sweep's decisions (src/account/identitySweep.ts) over the real
 * kratos_subjects table on both databases. Kratos's answers are given here as
 * functions: what the sweep does with each answer is the subject; the sweep
 * against the real Kratos and Hydra is in test/e2e/kratos.test.ts.
 */
for (const [kind, make] of Object.entries(storeBackends('identity-sweep'))) {
  describe(`identity sweep (${kind})`, () => {
    let backend: Backend;
    let db: Db;
    const lines: string[] = [];
    const log = createLogger('info', (l) => lines.push(l));

    beforeEach(async () => {
      backend = await make();
      db = await openDatabase(backend.target);
      await migrateToLatest(db, backend.target.kind);
      lines.length = 0;
    });
    afterEach(async () => {
      await db.destroy();
      await backend.cleanup();
    });

    async function known(...subs: string[]) {
      const store = kratosSubjectsStore(db);
      for (const s of subs) await store.record(s, new Date());
      return store;
    }

    const sweepOver = (
      subjects: Awaited<ReturnType<typeof known>>,
      opts: { present: Set<string>; inactive?: Set<string>; any?: boolean; failOn?: string; max?: number; failSuspending?: boolean },
    ) => {
      const removed: RemovalTarget[] = [];
      const calls: string[] = [];
      const sweep = createIdentitySweep({
        subjects,
        stateOf: async (sub) => {
          if (sub === opts.failOn) throw new KratosError(0, 'unavailable', 'Kratos unreachable');
          return opts.inactive?.has(sub) ? 'inactive' : opts.present.has(sub) ? 'active' : 'gone';
        },
        hasAnyIdentity: async () => opts.any ?? opts.present.size > 0,
        removeAccount: async (t) => {
          removed.push(t);
          return { sub: (t as { deletedAccount: string }).deletedAccount, outcome: 'removed', deleted: {} as never };
        },
        // The real suspension over the real table; Hydra's and Kratos's sides recorded (or failing like an unreachable Hydra).
        suspension: createAccountSuspension({
          subjects,
          hydra: {
            revokeConsentSessions: async (sub) => {
              if (opts.failSuspending) throw new HydraError(0, 'temporarily_unavailable', 'Hydra admin API unreachable');
              calls.push(`consents ${sub}`);
            },
            revokeLoginSessions: async (sub) => void calls.push(`logins ${sub}`),
          },
          endIdentitySessions: async (sub) => calls.push(`kratos sessions ${sub}`),
          onSuspended: (sub) => void calls.push(`refused ${sub}`),
          onReactivated: (sub) => void calls.push(`reactivated ${sub}`),
          log,
        }),
        log,
        everyMs: 0,
        pageSize: 2,
        ...(opts.max ? { maxRemovalsPerRun: opts.max } : {}),
      });
      return { sweep, removed, calls };
    };

    it('removes exactly the identities Kratos no longer has, paging through every known one', async () => {
      const subjects = await known('a', 'b', 'c', 'd', 'e');
      const { sweep, removed } = sweepOver(subjects, { present: new Set(['a', 'c', 'e']) });
      const report = await sweep.runOnce();
      expect(report).toEqual({ checked: 5, removed: ['b', 'd'], suspended: [], reactivated: [] });
      expect(removed).toEqual([{ deletedAccount: 'b' }, { deletedAccount: 'd' }]);
    });

    it('Kratos unreachable part-way: nobody is removed (a missing answer is not a deletion)', async () => {
      const subjects = await known('a', 'b', 'c');
      const { sweep, removed } = sweepOver(subjects, { present: new Set(['a']), failOn: 'c' });
      expect((await sweep.runOnce()).stopped).toBe('kratos-unavailable');
      expect(removed).toEqual([]);
      expect(lines.join('\n')).toContain('identity sweep skipped');
    });

    it('Kratos with no identities at all (wrong KRATOS_ADMIN_URL, an emptied database): nobody is removed, an error is logged', async () => {
      const subjects = await known('a', 'b');
      const { sweep, removed } = sweepOver(subjects, { present: new Set(), any: false });
      expect((await sweep.runOnce()).stopped).toBe('no-identities');
      expect(removed).toEqual([]);
      expect(lines.join('\n')).toContain('Kratos has no identities at all');
    });

    it('at most maxRemovalsPerRun per run; the rest in the next', async () => {
      const subjects = await known('a', 'b', 'c', 'd');
      const { sweep, removed } = sweepOver(subjects, { present: new Set(['a']), any: true, max: 2 });
      const report = await sweep.runOnce();
      expect(report.stopped).toBe('limit');
      expect(removed).toHaveLength(2);
    });

    it('issue 26 #7: a deactivated identity is suspended (refused first, then Hydra and Kratos revoked), not removed; once, however many runs', async () => {
      const subjects = await known('a', 'b', 'c');
      const inactive = new Set(['b']);
      const { sweep, removed, calls } = sweepOver(subjects, { present: new Set(['a', 'b', 'c']), inactive });
      expect(await sweep.runOnce()).toEqual({ checked: 3, removed: [], suspended: ['b'], reactivated: [] });
      expect(calls).toEqual(['refused b', 'consents b', 'logins b', 'kratos sessions b']);
      expect(removed, 'deactivated is not deleted').toEqual([]);
      expect((await subjects.page(undefined, 10)).map((s) => [s.sub, !!s.suspendedAt, !!s.revokedAt])).toEqual([['a', false, false], ['b', true, true], ['c', false, false]]);
      expect((await subjects.suspensions(new Date(0))).suspended).toEqual(['b']);
      calls.length = 0;
      expect(await sweep.runOnce(), 'nothing left to do').toMatchObject({ suspended: [], reactivated: [] });
      expect(calls).toEqual([]);

      inactive.delete('b');
      expect(await sweep.runOnce()).toMatchObject({ suspended: [], reactivated: ['b'] });
      expect(calls).toEqual(['reactivated b']);
      const after = await subjects.suspensions(new Date(0));
      expect(after.suspended).toEqual([]);
      expect(after.reactivated.map((r) => r.sub)).toEqual(['b']);
      calls.length = 0;
      expect(await sweep.runOnce()).toMatchObject({ suspended: [], reactivated: [] });
      expect(calls).toEqual([]);
    });

    it('issue 26 #7: Hydra unreachable while suspending: refused already; the next run finishes the revocations', async () => {
      const subjects = await known('a');
      const first = sweepOver(subjects, { present: new Set(['a']), inactive: new Set(['a']), failSuspending: true });
      expect(await first.sweep.runOnce()).toMatchObject({ suspended: [] });
      expect(first.calls).toEqual(['refused a']);
      expect(lines.join('\n')).toContain('suspension did not finish');
      expect((await subjects.suspensions(new Date(0))).suspended).toEqual(['a']);
      const second = sweepOver(subjects, { present: new Set(['a']), inactive: new Set(['a']) });
      expect(await second.sweep.runOnce()).toMatchObject({ suspended: ['a'] });
      expect(second.calls).toEqual(['refused a', 'consents a', 'logins a', 'kratos sessions a']);
    });

    it('issue 26 #7: two replicas sweeping at once record one suspension and one reactivation', async () => {
      const subjects = await known('a');
      const inactive = new Set(['a']);
      const one = sweepOver(subjects, { present: new Set(['a']), inactive });
      const two = sweepOver(kratosSubjectsStore(db), { present: new Set(['a']), inactive });
      await Promise.all([one.sweep.runOnce(), two.sweep.runOnce()]);
      const [row] = await subjects.page(undefined, 1);
      expect(row?.suspendedAt && row.revokedAt).toBeTruthy();
      inactive.delete('a');
      const [r1, r2] = await Promise.all([one.sweep.runOnce(), two.sweep.runOnce()]);
      expect([...one.calls, ...two.calls].filter((c) => c.startsWith('reactivated')), 'lifted by one of them').toEqual(['reactivated a']);
      // The other found it lifted already, or lifted it just before: either way no second reactivation.
      expect([...r1.reactivated, ...r2.reactivated]).toContain('a');
      expect((await subjects.suspensions(new Date(0))).suspended).toEqual([]);
    });

    it('two runs asked at once share one sweep', async () => {
      const subjects = await known('a', 'b');
      const { sweep, removed } = sweepOver(subjects, { present: new Set(['a']) });
      const [one, two] = await Promise.all([sweep.runOnce(), sweep.runOnce()]);
      expect(one).toBe(two);
      expect(removed).toEqual([{ deletedAccount: 'b' }]);
    });
  });
}
