import { kratosErrorFrom } from './errors.js';
import { kratosAdminUrls } from './endpoints.js';
import type { CreateIdentity, Identity, UpdateIdentity } from './models.js';
import type { KratosTransport } from './transport.js';

/**
 * Kratos's admin API (identities). It has no authentication of its own, so it
 * must only ever be reachable from this server. Errors become KratosError.
 */
export interface KratosAdmin {
  /** The identity, or undefined when Kratos has none with this id. */
  getIdentity(id: string): Promise<Identity | undefined>;
  /** Create an identity; a duplicate identifier is a KratosError with status 409. */
  createIdentity(body: CreateIdentity): Promise<Identity>;
  /**
   * Replace an identity (PUT: traits, state and both metadata are replaced, so
   * send the current ones); `credentials` given replace the password, absent
   * keep it. undefined when Kratos has no identity with this id.
   */
  updateIdentity(id: string, body: UpdateIdentity): Promise<Identity | undefined>;
  /** Revoke every session of an identity (it is signed out in every browser); false when it had none. */
  revokeSessions(id: string): Promise<boolean>;
  /** Delete an identity (and its sessions); false when there was none. */
  deleteIdentity(id: string): Promise<boolean>;
  /**
   * One page of identities (Kratos's keyset pagination: `pageToken` from the
   * previous page's `nextPageToken`); `identifier` finds the one with that
   * credential identifier (an email here) without listing everyone.
   */
  listIdentities(query?: { pageSize?: number; pageToken?: string; identifier?: string }): Promise<{ identities: Identity[]; nextPageToken?: string }>;
}

export function kratosAdminClient({ adminUrl, transport }: { adminUrl: URL; transport: KratosTransport }): KratosAdmin {
  const urls = kratosAdminUrls(adminUrl);
  /** DELETE: true when Kratos deleted something, false when there was nothing (404). */
  const remove = async (url: URL) => {
    const res = await transport.send('DELETE', url);
    await res.arrayBuffer();
    if (res.status === 404) return false;
    if (!res.ok) throw await kratosErrorFrom(res);
    return true;
  };
  return {
    async getIdentity(id) {
      const res = await transport.send('GET', urls.identity(id));
      if (res.status === 404) {
        await res.arrayBuffer();
        return undefined;
      }
      if (!res.ok) throw await kratosErrorFrom(res);
      return (await res.json()) as Identity;
    },
    createIdentity: (body) => transport.json<Identity>('POST', urls.identities, { schema_id: 'default', ...body }),
    async updateIdentity(id, body) {
      const res = await transport.send('PUT', urls.identity(id), body);
      if (res.status === 404) {
        await res.arrayBuffer();
        return undefined;
      }
      if (!res.ok) throw await kratosErrorFrom(res);
      return (await res.json()) as Identity;
    },
    revokeSessions: (id) => remove(urls.identitySessions(id)),
    deleteIdentity: (id) => remove(urls.identity(id)),
    async listIdentities(query = {}) {
      const url = new URL(urls.identities);
      url.searchParams.set('page_size', String(query.pageSize ?? 250));
      if (query.pageToken) url.searchParams.set('page_token', query.pageToken);
      if (query.identifier) url.searchParams.set('credentials_identifier', query.identifier);
      const res = await transport.send('GET', url);
      if (!res.ok) throw await kratosErrorFrom(res);
      const identities = (await res.json()) as Identity[];
      const next = nextPageToken(res.headers.get('link'));
      return next ? { identities, nextPageToken: next } : { identities };
    },
  };
}

/** The `page_token` of the `rel="next"` link in Kratos's Link header (RFC 8288). */
function nextPageToken(link: string | null): string | undefined {
  for (const part of (link ?? '').split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return new URL(m[1]!, 'http://x').searchParams.get('page_token') ?? undefined;
  }
  return undefined;
}
