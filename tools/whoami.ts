import { defineTool } from '../src/tools/contract.js';

/** Any valid token may call this, a machine client's too: it reports who the server thinks you are. */
export default defineTool({
  name: 'whoami',
  title: 'Who am I',
  description:
    'Returns who is calling: the subject (a person, or a machine client calling for itself), the kind of caller, the client id and the scopes of the access token.',
  input: {},
  scopes: [],
  callers: 'people-and-machines',
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: (_input, { principal }) => ({
    sub: principal.sub,
    kind: principal.kind,
    client_id: principal.clientId,
    scopes: principal.scopes,
    expires_at: new Date(principal.expiresAt * 1000).toISOString(),
  }),
});
