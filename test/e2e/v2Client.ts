/** The SDK v2 client (`@modelcontextprotocol/client`) with its own OAuth provider, as the e2e suites use it. */
import {
  Client,
  type ClientOptions,
  type OAuthClientInformationMixed,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type OAuthTokens,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import { expect } from 'vitest';
import { Browser } from '../support/browser.js';
import { signInAndAllow } from './flow.js';
import type { Stack, TestUser } from './stack.js';

export const REVISION = '2026-07-28';

/** The v2 client's side of OAuth, kept in memory; the test's Browser plays the person. */
export class V2OAuthClient implements OAuthClientProvider {
  authorizationUrl?: URL;
  private info?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier = '';
  private discovery?: OAuthDiscoveryState;

  constructor(readonly redirectUrl: string) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'hydra-mcp e2e (SDK v2)',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return 'state-' + Math.random().toString(36).slice(2, 12);
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
    return this.verifier;
  }
  // SEP-2352: the callback leg checks the code goes back to the AS that issued it.
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.discovery = state;
  }
  discoveryState() {
    return this.discovery;
  }
}

export type Mode = { pin: typeof REVISION } | 'auto';

export const newClient = (mode: Mode, options: ClientOptions = {}) =>
  new Client({ name: 'e2e-v2', version: '1.0.0' }, { ...options, versionNegotiation: { mode: mode === 'auto' ? 'auto' : mode } });

/** OAuth as the v2 client does it (discover, register, authorize, PKCE), then a connected client. */
export async function connectV2(stack: Stack, user: TestUser, mode: Mode, opts: { uncheck?: string[]; client?: () => Client } = {}) {
  const oauth = new V2OAuthClient('http://127.0.0.1:53682/callback');
  const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
  await expect(newClient(mode).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  expect(oauth.authorizationUrl, 'the v2 client asked to send the person to /authorize').toBeDefined();
  const back = await signInAndAllow(new Browser(), oauth as never, user, opts);
  // The whole callback query: the v2 client checks `iss` (RFC 9207) when the AS sends it.
  await first.finishAuth(back.url.searchParams);
  const client = opts.client?.() ?? newClient(mode);
  await client.connect(new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth }));
  return { client, oauth };
}

