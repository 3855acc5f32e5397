import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The link a person is sent to when a tool needs a connection they have not
 * made (URL-mode elicitation, MCP 2025-11-25 and 2026-07-28):
 * `<base>/account/connections/<provider>/connect?e=<id>.<mac>`.
 *
 * The MAC binds the elicitation id to the person and the provider without
 * putting either in the URL (the spec's "no sensitive data in URLs"): the
 * page accepts the link only from the person it was made for, once signed
 * in, so a link forwarded to someone else connects nothing of theirs to the
 * first person (the spec's phishing guidance for URL elicitation).
 */
export interface ConnectLinks {
  /** A new link for `sub` to connect `provider`, and its elicitation id. */
  mint(sub: string, provider: string): { elicitationId: string; url: string };
  /** The elicitation id, if `token` was minted for exactly this person and provider. */
  verify(token: string, sub: string, provider: string): string | undefined;
  /** The link without an elicitation (the account page's own Connect button). */
  plain(provider: string): string;
}

export function createConnectLinks(options: { publicBaseUrl: URL; secret: string }): ConnectLinks {
  const base = options.publicBaseUrl.href.replace(/\/$/, '');
  const mac = (id: string, sub: string, provider: string) =>
    createHmac('sha256', options.secret).update(`connect-link\0${id}\0${provider}\0${sub}`).digest('base64url').slice(0, 32);
  const plain = (provider: string) => `${base}/account/connections/${encodeURIComponent(provider)}/connect`;
  return {
    mint(sub, provider) {
      const elicitationId = randomBytes(16).toString('base64url');
      return { elicitationId, url: `${plain(provider)}?e=${elicitationId}.${mac(elicitationId, sub, provider)}` };
    },
    verify(token, sub, provider) {
      const m = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{32})$/.exec(token);
      if (!m) return undefined;
      const [, id, given] = m as unknown as [string, string, string];
      const want = Buffer.from(mac(id, sub, provider));
      return want.length === given.length && timingSafeEqual(want, Buffer.from(given)) ? id : undefined;
    },
    plain,
  };
}
