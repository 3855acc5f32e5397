import { z } from 'zod';
import { defineTool } from '../src/tools/contract.js';

export default defineTool({
  name: 'notes_add',
  title: 'Add a note',
  description: 'Saves a note for the signed-in user and returns it with its id.',
  input: {
    title: z.string().trim().min(1).max(200).describe('Short title'),
    body: z.string().max(10_000).describe('Text of the note'),
  },
  scopes: ['notes:write'],
  annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
  // ctx.store is already scoped to the caller's sub: no user id is passed in.
  handler: (input, { store }) => store.notes.add(input),
});
