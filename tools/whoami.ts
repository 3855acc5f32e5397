import { defineTool } from '../src/tools/contract.js';

/** Any valid token may call this: it reports who the server thinks you are. */
export default defineTool({
  name: 'whoami',
  title: 'Who am I',
  description: 'Returns the signed-in user (sub), the client id and the scopes of the access token.',
  input: {},
  scopes: [],
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: (_input, { principal }) => ({
    sub: principal.sub,
    client_id: principal.clientId,
    scopes: principal.scopes,
    expires_at: new Date(principal.expiresAt * 1000).toISOString(),
  }),
});
