import { defineTool } from '../src/tools/contract.js';
import whoami from '../tools/whoami.js';

/** The provider the bench's credential tool reads (never called: the stored token stays fresh). */
export const BENCH_PROVIDER = 'bench';

/**
 * whoami, after reading the caller's stored credential for `bench`: the
 * difference to whoami is what a connected account costs a tool call when
 * the credential is fresh (a store read and the in-memory opened copy).
 */
export const whoamiWithCredential = defineTool({
  name: 'whoami_credential',
  description: 'whoami after reading a stored credential (bench only).',
  input: {},
  scopes: [],
  callers: 'people-and-machines',
  credentials: [BENCH_PROVIDER],
  async handler(input, ctx) {
    await ctx.credentials.bench.accessToken();
    return whoami.handler(input, ctx as never);
  },
});
