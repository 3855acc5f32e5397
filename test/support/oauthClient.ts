import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

export interface TestOAuthClientOptions {
  /**
   * The client's own `state()`; `null` for a client that has none (the SDK
   * then sends no `state`, as its example OAuth client does).
   */
  state?: (() => string) | null;
  /** Register exactly this metadata, without the defaults filled in (a real client's shape). */
  exactMetadata?: boolean;
}

/**
 * What an MCP client keeps between steps of the OAuth flow, in memory. The
 * SDK calls redirectToAuthorization; the test's Browser then plays the person.
 */
export class TestOAuthClient implements OAuthClientProvider {
  authorizationUrl?: URL;
  state?: () => string;
  private info?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier?: string;

  constructor(
    readonly redirectUrl: string,
    private readonly metadata: Partial<OAuthClientMetadata> = {},
    private readonly options: TestOAuthClientOptions = {},
  ) {
    if (options.state !== null) this.state = options.state ?? (() => 'state-' + Math.random().toString(36).slice(2, 12));
  }

  get clientMetadata(): OAuthClientMetadata {
    if (this.options.exactMetadata) return this.metadata as OAuthClientMetadata;
    return {
      client_name: 'hydra-mcp e2e',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.metadata,
    };
  }

  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('No code verifier saved');
    return this.verifier;
  }
}
