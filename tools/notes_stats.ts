import { z } from 'zod';
import { defineTool } from '../src/tools/contract.js';

/**
 * A read-only tool with an output schema: clients get typed
 * `structuredContent` they can use without parsing text.
 */
export default defineTool({
  name: 'notes_stats',
  title: 'Note statistics',
  description: "Counts the signed-in user's notes and names the newest one.",
  input: {},
  output: {
    count: z.number().int().describe('How many notes the user has (up to 1000)'),
    newest: z.object({ id: z.string(), title: z.string(), createdAt: z.string() }).nullable().describe('The most recent note'),
  },
  scopes: ['notes:read'],
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async (_input, { store }) => {
    const notes = await store.notes.list({ limit: 1000 });
    const newest = notes.at(-1);
    return { count: notes.length, newest: newest ? { id: newest.id, title: newest.title, createdAt: newest.createdAt } : null };
  },
});
