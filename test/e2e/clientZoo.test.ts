import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import {
  authorizeUrl,
  codeFrom,
  connectWithSdk,
  expectTokens,
  pkcePair,
  protectedResourceMetadata,
  register,
  type Registration,
  ShapedOAuthProvider,
  signInAndAllow,
  states,
  tokenRequest,
  whoami,
} from './clientShapes.js';
import { call } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';

/**
 * The client zoo (issue 11, item 4): one end-to-end test per real MCP client
 * shape, against the real Ory Hydra. Each sends the registration body and the
 * authorization request the way that client does (the source is named above
 * each test), then: sign in → consent → token → tools/call whoami, and a
 * refresh where the client relies on one. Redirects the test cannot serve
 * (https://claude.ai/…, cursor://…, com.example.app:/…, loopback ports nobody
 * listens on) stop the browser there; the code is taken from that URL and
 * exchanged with the PKCE verifier, as the client would.
 *
 * JWT access tokens, so the audience a token carries can be read in the test.
 * The CIMD shapes (claude.ai, ChatGPT) are in cimd.test.ts.
 */
describe('client zoo: real MCP client shapes against the real Ory Hydra', () => {
  let stack: Stack;
  let user: TestUser;
  let mcp: string;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite' });
    user = await stack.addUser('zoo@example.com', 'zoo keeper password 7');
    mcp = `${stack.baseUrl}/mcp`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /**
   * The authorization-code leg with raw HTTP, shaped by the caller: open
   * `authorize`, let the person sign in and allow, check the browser came back
   * to `sentTo` with the client's own state, and exchange the code with
   * `token(code)`.
   */
  async function codeGrant(args: {
    authorize: Array<[string, string | undefined]>;
    sentTo: string;
    state: string | undefined;
    token: (code: string) => Array<[string, string | undefined]>;
    headers?: Record<string, string>;
  }) {
    const back = await signInAndAllow(authorizeUrl(stack, args.authorize), user, args.sentTo);
    const { code, state } = codeFrom(back);
    if (args.state !== undefined) expect(state, 'the client gets its own state back (RFC 6749 §4.1.2)').toBe(args.state);
    return { back, answer: await tokenRequest(stack, args.token(code), args.headers) };
  }

  /** A refresh as the client sends it; Hydra rotates the refresh token, and the new access token works. */
  async function refreshAndCall(reg: Registration, refreshToken: string, extra: Array<[string, string | undefined]> = []) {
    const answer = await tokenRequest(stack, [['grant_type', 'refresh_token'], ['refresh_token', refreshToken], ['client_id', reg.client_id], ...extra]);
    const tokens = expectTokens(answer, { refresh: true });
    expect(tokens.refresh_token, 'refresh tokens rotate').not.toBe(refreshToken);
    const me = await whoami(stack, tokens.access_token);
    expect(me).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    return tokens;
  }

  // Source: modelcontextprotocol/inspector client/src/lib/auth.ts (InspectorOAuthClientProvider.clientMetadata,
  // redirect_uris, state from client/src/utils/oauthUtils.ts generateOAuthState) — Inspector drives the SDK's auth().
  it('MCP Inspector (modelcontextprotocol/inspector client/src/lib/auth.ts): DCR body as Inspector sends it; resource; offline_access granted though not asked (SEP-2207); refresh', async () => {
    const origin = 'http://localhost:6274';
    const provider = new ShapedOAuthProvider(
      `${origin}/oauth/callback`,
      {
        redirect_uris: [`${origin}/oauth/callback`, `${origin}/oauth/callback/debug`],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: 'MCP Inspector',
        client_uri: 'https://github.com/modelcontextprotocol/inspector',
        scope: '',
      },
      states.hex,
    );
    const { client, authorizationUrl, state, close } = await connectWithSdk(stack, user, provider);
    try {
      const q = authorizationUrl.searchParams;
      expect(q.get('resource')).toBe(mcp);
      // The SDK v1 client asks for what the PRM lists, which leaves offline_access
      // out since SEP-2207 (so no prompt=consent either); consent still grants it
      // to a refresh-grant client (below), and the refresh at the end works.
      expect(q.get('scope')!.split(' ')).toEqual(['openid', 'notes:read', 'notes:write']);
      expect(q.get('prompt')).toBeNull();
      expect(state).toBe(q.get('state'));
      const reg = provider.clientInformation() as Registration;
      expect(reg.redirect_uris).toEqual([`${origin}/oauth/callback`, `${origin}/oauth/callback/debug`]);
      const me = (await call(client, 'whoami')).value;
      expect(me).toMatchObject({ sub: user.sub, client_id: reg.client_id });
      expect(me.scopes).toEqual(expect.arrayContaining(['openid', 'offline_access', 'notes:read', 'notes:write']));
    } finally {
      await close();
    }
    // Inspector refreshes through the SDK when its access token is refused.
    const before = provider.tokens()!;
    expect(await auth(provider, { serverUrl: stack.mcpUrl })).toBe('AUTHORIZED');
    expect(provider.tokens()!.access_token).not.toBe(before.access_token);
    expect((await whoami(stack, provider.tokens()!.access_token)).sub).toBe(user.sub);
  });

  // Source: modelcontextprotocol/typescript-sdk src/examples/client/simpleOAuthClient.ts — InMemoryOAuthClientProvider
  // has no state() (so the SDK sends none), registers client_secret_post with scope mcp:tools and
  // http://localhost:8090/callback. (Its newest version also passes a CIMD URL on val.run; this is its DCR path.)
  it('the MCP SDK example OAuth client (typescript-sdk simpleOAuthClient.ts): no state, a confidential client_secret_post client; refresh', async () => {
    const callback = 'http://localhost:8090/callback';
    const provider = new ShapedOAuthProvider(callback, {
      client_name: 'Simple OAuth MCP Client',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'mcp:tools',
    });
    const { client, authorizationUrl, back, close } = await connectWithSdk(stack, user, provider);
    try {
      expect(authorizationUrl.searchParams.has('state'), 'the SDK sent no state').toBe(false);
      // Hydra requires a state, so our /authorize supplied one; it comes back and the client ignores it.
      expect(back.searchParams.get('state')?.length ?? 0).toBeGreaterThanOrEqual(8);
      const reg = provider.clientInformation() as Registration;
      expect(reg.token_endpoint_auth_method).toBe('client_secret_post');
      expect(reg.client_secret, 'Hydra issued the secret the SDK then posts to /token').toBeTruthy();
      expect((await call(client, 'whoami')).value).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    } finally {
      await close();
    }
    expect(await auth(provider, { serverUrl: stack.mcpUrl })).toBe('AUTHORIZED');
    expect((await whoami(stack, provider.tokens()!.access_token)).sub).toBe(user.sub);
  });

  // Source: Claude Code's client document https://claude.ai/oauth/claude-code-client-metadata as quoted in
  // anthropics/claude-code#44429 (redirect_uris without a port), registered here by DCR; the authorization
  // request and its http://localhost:<random>/callback from anthropics/claude-code#10439; ory/hydra#4127.
  it('Claude Code (anthropics/claude-code#44429, #10439): registers http://localhost/callback, comes back on http://localhost:<random port>/callback, twice; refresh', async () => {
    const prm = await protectedResourceMetadata(stack);
    const reg = await register(stack, {
      client_name: 'Claude Code',
      redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    // Each sign-in binds a new ephemeral port (RFC 8252 §7.3).
    for (let attempt = 0; attempt < 2; attempt++) {
      const redirect = `http://localhost:${await freeLoopbackPort()}/callback`;
      const pkce = pkcePair();
      const state = states.base64url();
      const { answer } = await codeGrant({
        authorize: [
          ['response_type', 'code'],
          ['client_id', reg.client_id],
          ['code_challenge', pkce.challenge],
          ['code_challenge_method', 'S256'],
          ['redirect_uri', redirect],
          ['state', state],
          ['scope', prm.scopes_supported.join(' ')],
          ['resource', prm.resource],
        ],
        sentTo: redirect,
        state,
        token: (code) => [
          ['grant_type', 'authorization_code'],
          ['code', code],
          ['redirect_uri', redirect],
          ['client_id', reg.client_id],
          ['code_verifier', pkce.verifier],
          ['resource', prm.resource],
        ],
      });
      const tokens = expectTokens(answer, { refresh: true });
      expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id });
      if (attempt === 1) await refreshAndCall(reg, tokens.refresh_token!, [['resource', prm.resource]]);
    }
  });

  // Source: claude.ai's DCR body as documented by servers that log it (e.g. "Request (exactly what Claude sends)"
  // in public MCP server docs; anthropics/claude-ai-mcp#124, #313 for the auth_callback redirect); the brief:
  // claude.ai asks for no scope.
  it('claude.ai via DCR (anthropics/claude-ai-mcp#124): https://claude.ai/api/mcp/auth_callback, no scope asked; gets offline_access only; refresh', async () => {
    const callback = 'https://claude.ai/api/mcp/auth_callback';
    const reg = await register(stack, {
      client_name: 'Claude',
      redirect_uris: [callback],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    const pkce = pkcePair();
    const state = states.base64url();
    const { back, answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['state', state],
        ['resource', mcp],
      ],
      sentTo: callback,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['code_verifier', pkce.verifier],
        ['client_id', reg.client_id],
        ['resource', mcp],
      ],
    });
    expect(`${back.origin}${back.pathname}`).toBe(callback);
    const tokens = expectTokens(answer, { refresh: true });
    // No scope asked: nothing but our refresh-token policy is granted (README "How it works", Consent).
    expect(tokens.scope).toBe('offline_access');
    const me = await whoami(stack, tokens.access_token);
    expect(me).toMatchObject({ sub: user.sub, client_id: reg.client_id, scopes: ['offline_access'] });
    expect(decodeJwt(tokens.access_token).aud).toEqual([mcp]);
    await refreshAndCall(reg, tokens.refresh_token!, [['resource', mcp]]);
  });

  // Source: anthropics/claude-ai-mcp#1043 — claude.ai's hosted connector now registers with
  // token_endpoint_auth_method client_secret_post; the secret then travels in the token request body.
  it('claude.ai via DCR as a confidential client (anthropics/claude-ai-mcp#1043): client_secret_post at registration, token and refresh', async () => {
    const callback = 'https://claude.ai/api/mcp/auth_callback';
    const reg = await register(stack, {
      client_name: 'Claude',
      redirect_uris: [callback],
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    expect(reg.client_secret).toBeTruthy();
    const pkce = pkcePair();
    const state = states.base64url();
    const withSecret = (form: Array<[string, string | undefined]>) => [...form, ['client_secret', reg.client_secret] as [string, string]];
    const { answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['state', state],
        ['resource', mcp],
      ],
      sentTo: callback,
      state,
      token: (code) =>
        withSecret([
          ['grant_type', 'authorization_code'],
          ['code', code],
          ['redirect_uri', callback],
          ['code_verifier', pkce.verifier],
          ['client_id', reg.client_id],
          ['resource', mcp],
        ]),
    });
    const tokens = expectTokens(answer, { refresh: true });
    expect((await whoami(stack, tokens.access_token)).client_id).toBe(reg.client_id);
    // Without its secret the confidential client is refused by Hydra, as RFC 6749 §2.3 requires.
    const noSecret = await tokenRequest(stack, [['grant_type', 'refresh_token'], ['refresh_token', tokens.refresh_token!], ['client_id', reg.client_id]]);
    expect(noSecret.status).toBe(401);
    expect(noSecret.body.error).toBe('invalid_client');
    await refreshAndCall(reg, tokens.refresh_token!, [['client_secret', reg.client_secret!]]);
  });

  // Source: microsoft/vscode src/vs/base/common/oauth.ts fetchDynamicRegistration (redirect_uris, client_uri,
  // application_type native, grant_types filtered by the server's grant_types_supported, scope from the PRM) and
  // microsoft/vscode#278512 (authorization request on http://127.0.0.1:<random>/ when 33418 is taken).
  it('VS Code (microsoft/vscode oauth.ts, #278512): http://127.0.0.1/ registered without a port, a random 127.0.0.1 port used; base64 state; refresh', async () => {
    const prm = await protectedResourceMetadata(stack);
    const asMetadata = (await (await fetch(`${stack.baseUrl}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported?: string[] };
    const vscodeGrants = ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'];
    const reg = await register(stack, {
      client_name: 'Visual Studio Code',
      client_uri: 'https://code.visualstudio.com',
      grant_types: asMetadata.grant_types_supported ? asMetadata.grant_types_supported.filter((g) => vscodeGrants.includes(g)) : vscodeGrants,
      response_types: ['code'],
      redirect_uris: ['https://insiders.vscode.dev/redirect', 'https://vscode.dev/redirect', 'http://127.0.0.1/', 'http://127.0.0.1:33418/'],
      scope: prm.scopes_supported.join(' '),
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    });
    expect(reg.grant_types).toEqual(['authorization_code', 'refresh_token']);
    const redirect = `http://127.0.0.1:${await freeLoopbackPort()}/`;
    const pkce = pkcePair();
    const state = states.base64();
    const { answer } = await codeGrant({
      authorize: [
        ['client_id', reg.client_id],
        ['response_type', 'code'],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['scope', prm.scopes_supported.join(' ')],
        ['resource', prm.resource],
        ['redirect_uri', redirect],
        ['state', state],
      ],
      sentTo: redirect,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', redirect],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
        ['resource', prm.resource],
      ],
    });
    const tokens = expectTokens(answer, { refresh: true });
    expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    await refreshAndCall(reg, tokens.refresh_token!, [['resource', prm.resource]]);
  });

  // Source: the three redirect URIs Cursor registers in one request, as reported in erp-mafia/accounted#2225,
  // soflyy/agent-connector-for-wp#111 and different-ai/openwork#3059 (token_endpoint_auth_method none).
  it('Cursor (erp-mafia/accounted#2225, soflyy/agent-connector-for-wp#111): three redirect URIs in one registration; the browser is sent to cursor://…?code=…&state=…; refresh', async () => {
    const cursorUri = 'cursor://anysphere.cursor-mcp/oauth/callback';
    const prm = await protectedResourceMetadata(stack);
    const reg = await register(stack, {
      client_name: 'Cursor',
      redirect_uris: [cursorUri, 'https://www.cursor.com/agents/mcp/oauth/callback', 'http://localhost:8787/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    expect(reg.redirect_uris).toEqual([cursorUri, 'https://www.cursor.com/agents/mcp/oauth/callback', 'http://localhost:8787/callback']);
    const pkce = pkcePair();
    const state = states.base64url();
    const { back, answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['redirect_uri', cursorUri],
        ['state', state],
        ['scope', prm.scopes_supported.join(' ')],
        ['resource', prm.resource],
      ],
      sentTo: cursorUri,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', cursorUri],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
        ['resource', prm.resource],
      ],
    });
    // The operating system hands this URL to Cursor: its scheme, host and path, with the code and state.
    expect(back.href.startsWith(`${cursorUri}?`), back.href).toBe(true);
    expect(`${back.protocol}//${back.host}${back.pathname}`).toBe(cursorUri);
    expect(back.searchParams.get('state')).toBe(state);
    const tokens = expectTokens(answer, { refresh: true });
    expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    await refreshAndCall(reg, tokens.refresh_token!, [['resource', prm.resource]]);
  });

  // Source: ChatGPT's DCR body as recorded in public server tests (client_name ChatGPT, token_endpoint_auth_method
  // none) with its per-connector callback https://chatgpt.com/connector/oauth/<id> (BasedHardware/omi#8824,
  // danielealbano/android-remote-control-mcp#166); https://developers.openai.com/apps-sdk/build/auth: ChatGPT
  // echoes `resource` throughout the flow.
  it('ChatGPT registration fallback via DCR (developers.openai.com/apps-sdk/build/auth, BasedHardware/omi#8824): resource on authorize, token and refresh', async () => {
    const callback = 'https://chatgpt.com/connector/oauth/OUbdUMlL15Ct';
    const prm = await protectedResourceMetadata(stack);
    const reg = await register(stack, {
      client_name: 'ChatGPT',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const pkce = pkcePair();
    const state = states.base64url();
    const { answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['scope', prm.scopes_supported.join(' ')],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['resource', prm.resource],
      ],
      sentTo: callback,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
        ['resource', prm.resource],
      ],
    });
    const tokens = expectTokens(answer, { refresh: true });
    expect(decodeJwt(tokens.access_token).aud).toEqual([mcp]);
    expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    await refreshAndCall(reg, tokens.refresh_token!, [['resource', prm.resource]]);
  });

  // Source: RFC 8252 §7.1 (private-use URI scheme redirection: reverse-DNS scheme, a single slash after the colon)
  // and §8.6 (native apps are public clients, PKCE); OpenID Connect DCR application_type native.
  it('a native app with a reverse-DNS private-use scheme (RFC 8252 §7.1): com.example.app:/oauth/callback', async () => {
    const callback = 'com.example.app:/oauth/callback';
    const reg = await register(stack, {
      client_name: 'Example Notes for iOS',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    });
    const pkce = pkcePair();
    const state = states.base64url();
    const { back, answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['scope', 'openid offline_access notes:read'],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['resource', mcp],
      ],
      sentTo: callback,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
      ],
    });
    expect(back.protocol).toBe('com.example.app:');
    expect(back.pathname).toBe('/oauth/callback');
    const tokens = expectTokens(answer, { refresh: true });
    expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id, scopes: ['openid', 'offline_access', 'notes:read'] });
    await refreshAndCall(reg, tokens.refresh_token!);
  });

  // Source: /work/shared/HYDRA.md "Refresh tokens" (Claude, Cursor and VS Code often do not ask for offline_access;
  // Hydra issues refresh tokens only for offline/offline_access) and README "How it works" (Consent): clients
  // allowed the refresh_token grant are offered offline_access unasked, ticked by default.
  it('a client that never asks for offline_access still gets a refresh token (our consent policy), and refresh works', async () => {
    const callback = 'http://127.0.0.1/callback';
    const reg = await register(stack, {
      client_name: 'No offline_access client',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const redirect = `http://127.0.0.1:${await freeLoopbackPort()}/callback`;
    const pkce = pkcePair();
    const state = states.base64url();
    const { answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', redirect],
        ['scope', 'openid notes:read notes:write'],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['resource', mcp],
      ],
      sentTo: redirect,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', redirect],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
        ['resource', mcp],
      ],
    });
    const tokens = expectTokens(answer, { refresh: true });
    expect(tokens.scope.split(' ').sort()).toEqual(['notes:read', 'notes:write', 'offline_access', 'openid']);
    const refreshed = await refreshAndCall(reg, tokens.refresh_token!, [['resource', mcp]]);
    expect(refreshed.scope.split(' ').sort()).toEqual(['notes:read', 'notes:write', 'offline_access', 'openid']);
  });

  it('a client registered without the refresh_token grant never gets offline_access nor a refresh token', async () => {
    const callback = 'http://127.0.0.1/callback';
    const reg = await register(stack, {
      client_name: 'Code-only client',
      redirect_uris: [callback],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const pkce = pkcePair();
    const state = states.base64url();
    const { answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['scope', 'openid notes:read'],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
      ],
      sentTo: callback,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
      ],
    });
    const tokens = expectTokens(answer, { refresh: false });
    expect(tokens.scope.split(' ').sort()).toEqual(['notes:read', 'openid']);
    expect((await whoami(stack, tokens.access_token)).scopes).toEqual(['openid', 'notes:read']);
  });

  // Source: /work/shared/HYDRA.md "Audience and the resource parameter" (clients differ on the trailing slash);
  // RFC 8707 §2. The token's audience is still our canonical URL, without the slash.
  it('a client that sends resource with a trailing slash (http://127.0.0.1:<port>/mcp/) gets a token for /mcp', async () => {
    const callback = 'http://127.0.0.1/callback';
    const slashed = `${mcp}/`;
    const reg = await register(stack, {
      client_name: 'Trailing slash client',
      redirect_uris: [callback],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const pkce = pkcePair();
    const state = states.base64url();
    const { answer } = await codeGrant({
      authorize: [
        ['response_type', 'code'],
        ['client_id', reg.client_id],
        ['redirect_uri', callback],
        ['scope', 'openid offline_access'],
        ['state', state],
        ['code_challenge', pkce.challenge],
        ['code_challenge_method', 'S256'],
        ['resource', slashed],
      ],
      sentTo: callback,
      state,
      token: (code) => [
        ['grant_type', 'authorization_code'],
        ['code', code],
        ['redirect_uri', callback],
        ['client_id', reg.client_id],
        ['code_verifier', pkce.verifier],
        ['resource', slashed],
      ],
    });
    const tokens = expectTokens(answer, { refresh: true });
    expect(decodeJwt(tokens.access_token).aud).toEqual([mcp]);
    expect(await whoami(stack, tokens.access_token)).toMatchObject({ sub: user.sub, client_id: reg.client_id });
    const refreshed = await refreshAndCall(reg, tokens.refresh_token!, [['resource', slashed]]);
    expect(decodeJwt(refreshed.access_token).aud).toEqual([mcp]);
  });
});
