import { InvalidTokenError, ServerError } from '../src/auth/oauthErrors.js';
import { toAuthInfo } from '../src/auth/principal.js';
import type { AccessTokenVerifier } from '../src/auth/tokenVerifier.js';
import type { VerifierParts } from '../src/main.js';

/**
 * For comparison only: the per-call pattern of `@ory/mcp-oauth-provider`.
 * Every request introspects the token at Hydra, then lists every registered
 * OAuth client (page by page) to find the token's client. Nothing is cached.
 * Never used outside `npm run bench`.
 */
export function introspectEverythingVerifier({ config, hydraAdmin }: VerifierParts): AccessTokenVerifier {
  const admin = config.hydra.adminUrl;
  const introspect = async (token: string) => {
    const answer = await hydraAdmin.introspect(token);
    const { sub, exp } = answer;
    if (!answer.active || !sub || typeof exp !== 'number') throw new InvalidTokenError('Token is not active');
    return { ...answer, sub, exp };
  };
  return {
    async verifyAccessToken(token) {
      const answer = await introspect(token);
      const clients = await listAllClients(admin);
      const client = clients.find((c) => c.client_id === answer.client_id);
      if (!client) throw new InvalidTokenError('Unknown client');
      const principal = {
        sub: answer.sub,
        clientId: client.client_id,
        scopes: (answer.scope ?? '').split(' ').filter(Boolean),
        expiresAt: answer.exp,
      };
      return toAuthInfo(principal, token, config.resourceUrl);
    },
    isActiveNow: async (token) => (await introspect(token).then(() => true, () => false)),
  };
}

/** GET /admin/clients, following Hydra's `Link: <…>; rel="next"` pages to the end. */
async function listAllClients(adminUrl: URL): Promise<{ client_id: string }[]> {
  const all: { client_id: string }[] = [];
  let next: URL | undefined = new URL('/admin/clients?page_size=500', adminUrl);
  while (next) {
    const res: Response = await fetch(next);
    if (!res.ok) throw new ServerError(`listing clients failed: ${res.status}`);
    const page = (await res.json()) as { client_id: string }[];
    all.push(...page);
    const link = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    next = link && page.length > 0 ? new URL(link, adminUrl) : undefined;
  }
  return all;
}
