import { z } from 'zod';
import { defineTool, ToolError } from '../src/tools/contract.js';

export default defineTool({
  name: 'notes_delete',
  title: 'Delete a note',
  description: 'Deletes one of the signed-in user\'s notes by id.',
  input: { id: z.string().uuid().describe('Note id') },
  scopes: ['notes:write'],
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  // Destructive: act only on a token Hydra confirms is still active, even a JWT.
  onlineCheck: true,
  handler: async ({ id }, { store }) => {
    if (!(await store.notes.delete(id))) throw new ToolError(`No note with id ${id}`);
    return { deleted: id };
  },
});
