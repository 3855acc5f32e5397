import { z } from 'zod';
import { defineTool, pageInput, ToolError } from '../src/tools/contract.js';

const order = z.enum(['newest', 'oldest']);

// What a notes_list cursor carries: the order of the list and the sort key of
// the last note on the page (a keyset position, not an offset).
const position = z.object({ order, createdAt: z.string(), id: z.string() });

const note = z.object({ id: z.string(), title: z.string(), body: z.string(), createdAt: z.string() });

export default defineTool({
  name: 'notes_list',
  title: 'List notes',
  description:
    "Lists the signed-in user's notes a page at a time, newest first (order \"oldest\" for oldest first). " +
    'When the result has nextCursor there are more: call again with cursor set to it.',
  input: {
    ...pageInput({ defaultLimit: 50, maxLimit: 100 }),
    order: order.optional().describe('newest (default) or oldest first; a cursor continues in the order it was made with'),
  },
  output: {
    notes: z.array(note),
    nextCursor: z.string().optional().describe('Pass as cursor for the next page; absent on the last page'),
  },
  scopes: ['notes:read'],
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async (input, { store, cursors }) => {
    const from = cursors.open(input.cursor, position);
    if (from && input.order && input.order !== from.order) {
      throw new ToolError(`the cursor continues a ${from.order}-first list; omit order, or start again without a cursor`);
    }
    const listOrder = from?.order ?? input.order ?? 'newest';
    const page = await store.notes.page({ limit: input.limit, order: listOrder, after: from });
    return page.next ? { notes: page.notes, nextCursor: cursors.seal({ order: listOrder, ...page.next }) } : { notes: page.notes };
  },
});
