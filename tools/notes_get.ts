import { z } from 'zod';
import { defineTool, ToolError } from '../src/tools/contract.js';

export default defineTool({
  name: 'notes_get',
  title: 'Get a note',
  description: 'Returns one of the signed-in user\'s notes by id.',
  input: { id: z.string().uuid().describe('Note id from notes_add or notes_list') },
  scopes: ['notes:read'],
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async ({ id }, { store }) => {
    const note = await store.notes.get(id);
    // Another user's id looks exactly like a missing one: nothing leaks.
    if (!note) throw new ToolError(`No note with id ${id}`);
    return note;
  },
});
