import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineTool } from '../../src/tools/contract.js';
import { type ToolHarness, toolHarness } from '../../src/mcp/toolHarness.js';
import notesList from '../../tools/notes_list.js';

/**
 * A second list tool that hands out cursors of exactly notes_list's shape,
 * so the only thing wrong with its cursors in notes_list is the tool they
 * were issued for.
 */
const otherList = defineTool({
  name: 'other_list',
  description: 'Hands out a cursor shaped like a notes_list cursor',
  input: {},
  scopes: [],
  handler: (_input, { cursors }) => ({ nextCursor: cursors.seal({ order: 'newest', createdAt: '2026-01-01T00:00:00.000Z', id: 'x' }) }),
});

const reader = (sub: string) => ({ sub, scopes: ['notes:read'] });
type Page = { notes: { id: string; title: string; createdAt: string }[]; nextCursor?: string };

describe('notes_list through a real McpServer (pages with signed keyset cursors)', () => {
  let h: ToolHarness;
  /** Titles of alice's notes, oldest first; each has its own second. */
  const titles = Array.from({ length: 7 }, (_, i) => `note ${i}`);

  beforeAll(async () => {
    h = await toolHarness([notesList, otherList]);
    const at = (i: number) => new Date(Date.UTC(2026, 10, 1, 0, 0, i)).toISOString();
    await h.db
      .insertInto('notes')
      .values([
        ...titles.map((title, i) => ({ id: randomUUID(), sub: 'alice', title, body: '', created_at: at(i) })),
        ...Array.from({ length: 60 }, (_, i) => ({ id: randomUUID(), sub: 'bob', title: `bob ${i}`, body: '', created_at: at(i) })),
      ])
      .execute();
  });
  afterAll(() => h.close());

  const list = async (args: Record<string, unknown>, sub = 'alice') => {
    const r = await h.call('notes_list', args, reader(sub));
    expect(r.isError, r.text).toBeFalsy();
    expect(r.structuredContent).toEqual(JSON.parse(r.text));
    return r.structuredContent as Page;
  };

  async function walk(args: Record<string, unknown>) {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await list({ ...args, ...(cursor ? { cursor } : {}) });
      pages.push(page.notes.map((n) => n.title));
      cursor = page.nextCursor;
    } while (cursor && pages.length < 20);
    return pages;
  }

  it('pages newest first with nextCursor until the last page, which has none', async () => {
    expect(await walk({ limit: 3 })).toEqual([
      ['note 6', 'note 5', 'note 4'],
      ['note 3', 'note 2', 'note 1'],
      ['note 0'],
    ]);
  });

  it('pages oldest first when asked, and the cursor keeps that order', async () => {
    expect(await walk({ limit: 4, order: 'oldest' })).toEqual([
      ['note 0', 'note 1', 'note 2', 'note 3'],
      ['note 4', 'note 5', 'note 6'],
    ]);
  });

  it('returns 50 notes by default, with a cursor to the rest', async () => {
    const first = await list({}, 'bob');
    expect(first.notes).toHaveLength(50);
    expect(first.notes[0]!.title).toBe('bob 59');
    const rest = await list({ cursor: first.nextCursor }, 'bob');
    expect(rest.notes.map((n) => n.title)).toEqual(Array.from({ length: 10 }, (_, i) => `bob ${9 - i}`));
    expect(rest).not.toHaveProperty('nextCursor');
  });

  it('refuses a cursor used with the other order, naming the cursor', async () => {
    const { nextCursor } = await list({ limit: 2 });
    const r = await h.call('notes_list', { cursor: nextCursor, order: 'oldest' }, reader('alice'));
    expect(r).toMatchObject({ isError: true, text: 'the cursor continues a newest-first list; omit order, or start again without a cursor' });
  });

  it.each([
    ['a page size of 0', { limit: 0 }],
    ['a negative page size', { limit: -5 }],
    ['a page size over the maximum (100)', { limit: 101 }],
  ])('refuses %s as an input error naming limit', async (_case, args) => {
    const r = await h.call('notes_list', args, reader('alice'));
    expect(r.isError).toBe(true);
    expect(r.text).toContain('Input validation error');
    expect(r.text).toContain('limit');
  });

  describe('bad cursors: a tool error naming the cursor, and no rows', () => {
    let aliceCursor: string;
    beforeAll(async () => {
      aliceCursor = (await list({ limit: 2 })).nextCursor!;
    });

    const cases: [string, () => Promise<{ cursor: string; sub: string }>, string][] = [
      ['a forged position (payload edited, tag kept)', async () => {
        const [v, payload, tag] = aliceCursor.split('.') as [string, string, string];
        const edited = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()), createdAt: '2099-01-01T00:00:00.000Z' };
        return { cursor: `${v}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${tag}`, sub: 'alice' };
      }, 'was not issued to this user for notes_list, or was altered'],
      ['a truncated cursor', async () => ({ cursor: aliceCursor.slice(0, -6), sub: 'alice' }), 'is malformed or truncated'],
      ["another person's cursor", async () => ({ cursor: aliceCursor, sub: 'bob' }), 'was not issued to this user for notes_list, or was altered'],
      ["another tool's cursor", async () => {
        const r = await h.call('other_list', {}, { sub: 'alice' });
        return { cursor: (JSON.parse(r.text) as { nextCursor: string }).nextCursor, sub: 'alice' };
      }, 'was not issued to this user for notes_list, or was altered'],
      ['garbage', async () => ({ cursor: 'page=2', sub: 'alice' }), 'is malformed or truncated'],
    ];

    it.each(cases)('refuses %s', async (_case, make, why) => {
      const { cursor, sub } = await make();
      const r = await h.call('notes_list', { cursor }, reader(sub));
      expect(r.isError).toBe(true);
      expect(r.text).toBe(`invalid_cursor: the cursor ${why}; call notes_list without a cursor to start from the first page`);
      expect(r.structuredContent).toBeUndefined();
      expect(r.text).not.toMatch(/note \d|bob \d/);
    });
  });
});
