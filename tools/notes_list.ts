import { z } from 'zod';
import { defineTool } from '../src/tools/contract.js';

export default defineTool({
  name: 'notes_list',
  title: 'List notes',
  description: "Lists the signed-in user's notes, oldest first.",
  input: {
    limit: z.number().int().min(1).max(100).default(50).describe('Most notes to return'),
  },
  scopes: ['notes:read'],
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async ({ limit }, { store }) => ({ notes: await store.notes.list({ limit }) }),
});
