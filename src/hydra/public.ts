import { HydraError } from './errors.js';
import { hydraAdminUrls, hydraPublicUrls } from './endpoints.js';
import type { HydraTransport } from './transport.js';

/** What Hydra answered to a forwarded token or revocation request, passed on verbatim. */
export interface ForwardedResponse {
  status: number;
  body: unknown;
}

/** Hydra's public port as this server uses it, plus the health checks /readyz asks. */
export interface HydraPublic {
  /** Where JWT access tokens' signing keys are published. */
  readonly jwksUrl: URL;
  /**
   * POST a token (RFC 6749 §3.2) or revocation (RFC 7009 §2.1) form with the
   * client's own authentication (an `Authorization` header, or credentials
   * in the form) and return Hydra's status and JSON body unchanged; an
   * unreachable Hydra is a HydraError with status 0.
   */
  forward(endpoint: 'token' | 'revoke', form: URLSearchParams, authorization?: string): Promise<ForwardedResponse>;
  /** Resolves when Hydra's admin health check says ready. */
  adminReady(): Promise<void>;
  /** Resolves when the JWKS answers 200. */
  jwksReachable(): Promise<void>;
}

export interface HydraPublicOptions {
  /** Hydra's public URL as this server reaches it. */
  publicUrl: URL;
  /** Hydra's admin URL, for its health check only. */
  adminUrl: URL;
  transport: HydraTransport;
}

export function hydraPublicClient({ publicUrl, adminUrl, transport }: HydraPublicOptions): HydraPublic {
  const urls = hydraPublicUrls(publicUrl);
  const reach = async (url: URL) => {
    const res = await transport.send('GET', url);
    await res.arrayBuffer();
    if (!res.ok) throw new HydraError(res.status, 'not_ready', `${url.pathname} answered ${res.status}`);
  };
  return {
    jwksUrl: urls.jwks,
    async forward(endpoint, form, authorization) {
      const res = await transport.send('POST', urls[endpoint], { form }, authorization ? { authorization } : undefined);
      const text = await res.text().catch(() => '');
      let body: unknown = {};
      try {
        body = text ? JSON.parse(text) : {};
      } catch {
        body = { error: 'server_error', error_description: 'The authorization server sent an unreadable answer' };
      }
      return { status: res.status, body };
    },
    adminReady: () => reach(hydraAdminUrls(adminUrl).ready),
    jwksReachable: () => reach(urls.jwks),
  };
}
