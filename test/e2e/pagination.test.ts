import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type Connected, connectAs } from './flow.js';
import { type Stack, startStack } from './stack.js';

/**
 * notes_list pages with signed keyset cursors (MCP 2025-06-18 "Pagination":
 * cursors are opaque to clients), against the real Ory Hydra and the SDK
 * client: 150 notes newest first to the very first one, back again oldest
 * first, and cursors that are forged or belong to someone else refused.
 */
describe('notes_list pagination (real Ory Hydra, SDK client)', () => {
  let stack: Stack;
  let alice: Connected;
  let bob: Connected;
  /** Alice's notes by id: the batch each was written in (batches one after another). */
  const batchOf = new Map<string, number>();
  const BATCHES = 6;
  const PER_BATCH = 25;

  beforeAll(async () => {
    // 150 notes_add from one token in a few seconds is past the default fair-use burst (60): allow it here.
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', appEnv: async () => ({ MCP_BURST: '200' }) });
    alice = await connectAs(stack, await stack.addUser('alice.pages@example.com', 'alice pages password'));
    bob = await connectAs(stack, await stack.addUser('bob.pages@example.com', 'bob pages password'));
    // 150 notes through the tool itself: 25 calls at a time, batch after batch,
    // so a later batch is always newer than an earlier one.
    for (let b = 0; b < BATCHES; b++) {
      const added = await Promise.all(
        Array.from({ length: PER_BATCH }, (_, i) => call(alice.client, 'notes_add', { title: `batch ${b} #${i}`, body: '' })),
      );
      for (const r of added) {
        expect(r.isError, r.text).toBe(false);
        batchOf.set(r.value.id, b);
      }
    }
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await stack?.stop();
  });

  type Note = { id: string; createdAt: string };
  async function walk(client: Connected['client'], args: Record<string, unknown>) {
    const pages: Note[][] = [];
    let cursor: string | undefined;
    do {
      const r = await call(client, 'notes_list', { ...args, ...(cursor ? { cursor } : {}) });
      expect(r.isError, r.text).toBe(false);
      pages.push(r.value.notes);
      cursor = r.value.nextCursor;
    } while (cursor && pages.length < 50);
    return pages;
  }

  it('pages through 150 notes newest first to the first one written, then back oldest first', async () => {
    const newest = await walk(alice.client, { limit: 40 });
    expect(newest.map((p) => p.length)).toEqual([40, 40, 40, 30]);
    const ids = newest.flat().map((n) => n.id);
    expect(new Set(ids).size).toBe(150);
    expect(new Set(ids)).toEqual(new Set(batchOf.keys()));
    // Newest first: timestamps never rise, and no note of an earlier batch comes before a later batch's.
    const stamps = newest.flat().map((n) => n.createdAt);
    expect(stamps).toEqual([...stamps].sort().reverse());
    const batches = ids.map((id) => batchOf.get(id)!);
    expect(batches).toEqual([...batches].sort((a, b) => b - a));
    expect(batches[0]).toBe(BATCHES - 1);
    expect(batches.at(-1)).toBe(0);

    // Back to the start: the same notes oldest first, exactly reversed.
    const oldest = await walk(alice.client, { limit: 50, order: 'oldest' });
    expect(oldest.map((p) => p.length)).toEqual([50, 50, 50]);
    expect(oldest.flat().map((n) => n.id)).toEqual([...ids].reverse());

    // The default page (50 newest) is the start of the newest-first walk.
    const first = await call(alice.client, 'notes_list');
    expect(first.value.notes.map((n: Note) => n.id)).toEqual(ids.slice(0, 50));
    expect(typeof first.value.nextCursor).toBe('string');
  });

  describe('cursors that are not the caller’s own: a tool error naming the cursor, and no rows', () => {
    let cursor: string;
    beforeAll(async () => {
      cursor = (await call(alice.client, 'notes_list', { limit: 10 })).value.nextCursor;
    });

    it("refuses alice's cursor presented by bob", async () => {
      expect(await call(bob.client, 'notes_list', { cursor })).toEqual({
        isError: true,
        text: 'invalid_cursor: the cursor was not issued to this user for notes_list, or was altered; call notes_list without a cursor to start from the first page',
      });
    });

    it('refuses a forged cursor (position edited to skip ahead, tag kept)', async () => {
      const [v, payload, tag] = cursor.split('.') as [string, string, string];
      const position = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { createdAt: string };
      const skipped = Buffer.from(JSON.stringify({ ...position, createdAt: '2000-01-01T00:00:00.000Z' })).toString('base64url');
      const r = await call(alice.client, 'notes_list', { cursor: `${v}.${skipped}.${tag}` });
      expect(r).toMatchObject({ isError: true, text: expect.stringMatching(/^invalid_cursor: the cursor was not issued to this user for notes_list, or was altered/) });
    });

    it('refuses a truncated cursor', async () => {
      const r = await call(alice.client, 'notes_list', { cursor: cursor.slice(0, cursor.length - 10) });
      expect(r).toMatchObject({ isError: true, text: expect.stringMatching(/^invalid_cursor: the cursor is malformed or truncated/) });
    });

    it('leaves both lists as they were: alice still pages from her cursor, bob has no notes', async () => {
      const next = await call(alice.client, 'notes_list', { cursor, limit: 5 });
      expect(next.isError).toBe(false);
      expect(next.value.notes).toHaveLength(5);
      expect(await call(bob.client, 'notes_list')).toMatchObject({ isError: false, value: { notes: [] } });
    });
  });

  it.each([0, -1, 101])('refuses a page size of %s as an input error', async (limit) => {
    const r = await call(alice.client, 'notes_list', { limit });
    expect(r.isError).toBe(true);
    expect(r.text).toContain('Input validation error');
    expect(r.text).toContain('limit');
  });
});
