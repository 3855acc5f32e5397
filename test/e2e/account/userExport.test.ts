import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../src/store/database.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';
import { runUserScript } from '../../support/userCli.js';

describe('npm run user -- export (the CLI, on a SQLite file)', () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-user-export-'));
    path = join(dir, 'users.sqlite');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Run scripts/user.ts like `npm run user -- …`, stdin piped, cwd outside the checkout (no .env). */
  const user = (args: string[], stdin = '') => runUserScript(args, { cwd: dir, env: { DATABASE_PATH: path, DATABASE_URL: undefined }, stdin });

  it('prints an empty, valid document for a person with no data', async () => {
    const added = await user(['add', 'alice@example.com'], 'correct horse\n');
    const sub = /sub ([0-9a-f-]{36})/.exec(added.out)![1];
    const r = await user(['export', 'Alice@Example.com']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse(r.out)).toMatchObject({ format: 'hydra-mcp-export', version: 1, sub, account: { email: 'alice@example.com' }, notes: [], records: [] });
  });

  it("prints every note and record of the person (the export the web download streams), and nobody else's", async () => {
    const bobOut = await user(['add', 'bob@example.com'], 'battery staple\n');
    const bob = /sub ([0-9a-f-]{36})/.exec(bobOut.out)![1]!;
    const db = await openDatabase({ kind: 'sqlite', path });
    try {
      const alice = (await db.selectFrom('users').select('id').where('email', '=', 'alice@example.com').executeTakeFirstOrThrow()).id;
      for (let i = 0; i < 600; i++) await scopedStoreFor(db, alice).notes.add({ title: `n${i}`, body: 'ü "quoted" \\ </script>' });
      await scopedStoreFor(db, alice).records('todo').put('1', ['milk', 'eggs']);
      await scopedStoreFor(db, bob).notes.add({ title: 'bob only', body: '' });
    } finally {
      await db.destroy();
    }
    const r = await user(['export', 'alice@example.com']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out);
    // More notes than one page (500): the pages join into one array, in order.
    expect(doc.notes.map((n: { title: string }) => n.title)).toEqual(Array.from({ length: 600 }, (_, i) => `n${i}`));
    expect(doc.notes[0].body).toBe('ü "quoted" \\ </script>');
    expect(doc.records).toEqual([expect.objectContaining({ collection: 'todo', key: '1', value: ['milk', 'eggs'] })]);
    expect(r.out).not.toContain('bob only');
  });

  it('refuses an unknown email with exit 1 naming it, and prints nothing on stdout', async () => {
    expect(await user(['export', 'nobody@example.com'])).toEqual({ code: 1, out: '', err: 'error: no user with email nobody@example.com\n' });
  });

  it('prints usage and exits 2 without an email', async () => {
    const r = await user(['export']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('export <email>');
  });
});
