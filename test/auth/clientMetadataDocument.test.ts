import { InvalidClientError } from '../../src/auth/oauthErrors.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cacheSeconds,
  checkClientIdUrl,
  ClientMetadataDocuments,
  type ClientMetadataDocumentsOptions,
} from '../../src/auth/cimd/clientMetadataDocument.js';
import { blockedRange, type Resolver } from '../../src/auth/cimd/publicAddress.js';
import { type DocumentServer, makeTestCa, startDocumentServer, type TestCa } from '../support/testCa.js';

/**
 * Client ID Metadata Documents against a real https server on 127.0.0.1
 * (certificate from a CA made at test time). Host names that must resolve to
 * internal addresses use a stub resolver (no real DNS offline); the address
 * check and the connection still go through the real https client.
 */

/** Stub DNS: these names "resolve" to the addresses given. */
const STUB_DNS: Record<string, string[]> = {
  'cimd.test': ['127.0.0.1'],
  'slow.example': ['127.0.0.1'],
  'other.example': ['127.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'private.test': ['10.1.2.3'],
  'ula.test': ['fd00::1'],
  'v6loopback.test': ['::1'],
  'mapped.test': ['::ffff:169.254.169.254'],
  'cgnat.test': ['100.64.0.1'],
  'mixed.test': ['93.184.215.14', '192.168.1.1'],
};
const stubResolver: Resolver = async (host) => {
  const found = STUB_DNS[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

let ca: TestCa;
let server: DocumentServer;
let clock = 1_000_000;
const docUrl = (path: string) => `${server.origin}${path}`;
const documents = (opts: ClientMetadataDocumentsOptions = {}) =>
  new ClientMetadataDocuments({ testLoopbackCa: ca.caPem, resolver: stubResolver, now: () => clock, ...opts });
const claudeShaped = (url: string, extra: Record<string, unknown> = {}) => ({
  client_id: url,
  client_name: 'Claude',
  redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
  token_endpoint_auth_method: 'none',
  ...extra,
});

beforeAll(async () => {
  ca = await makeTestCa(['127.0.0.1', 'localhost', 'cimd.test', 'slow.example', 'other.example']);
  server = await startDocumentServer(ca);
}, 30_000);
afterAll(async () => {
  await server?.close();
  await ca?.remove();
});
beforeEach(() => {
  clock += 100 * 24 * 3600 * 1000;
});

describe('a good document', () => {
  it('is fetched over https and returned validated', async () => {
    const url = docUrl('/good/client.json');
    server.route('/good/client.json', { body: claudeShaped(url, { logo_uri: 'https://claude.ai/logo.png', unknown_field: 1 }) });
    const client = await documents().resolve(url);
    expect(client).toEqual({
      client_id: url,
      client_name: 'Claude',
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      token_endpoint_auth_method: 'none',
      logo_uri: 'https://claude.ai/logo.png',
    });
  });

  it('is fetched through a host name whose (stub) resolution is checked and then connected to', async () => {
    const url = `https://cimd.test:${server.port}/by-name/client.json`;
    server.route('/by-name/client.json', { body: claudeShaped(url) });
    expect((await documents().resolve(url)).client_id).toBe(url);
  });

  it('private_key_jwt with an https jwks_uri (the ChatGPT shape) is accepted', async () => {
    const url = docUrl('/chatgpt/client.json');
    server.route('/chatgpt/client.json', {
      body: {
        client_id: url,
        client_name: 'ChatGPT',
        redirect_uris: ['https://chatgpt.com/connector/oauth/abc123'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: 'https://chatgpt.com/oauth/abc123/jwks.json',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    });
    const client = await documents().resolve(url);
    expect(client.token_endpoint_auth_method).toBe('private_key_jwt');
    expect(client.jwks_uri).toBe('https://chatgpt.com/oauth/abc123/jwks.json');
  });
});

describe('bad input is refused with invalid_client, saying why', () => {
  const big = 'x'.repeat(6 * 1024);
  const cases: { name: string; path: string; url?: (path: string) => string; route?: (url: string) => Parameters<DocumentServer['route']>[1]; opts?: ClientMetadataDocumentsOptions; error: RegExp }[] = [
    { name: 'an http URL', path: '/http/client.json', url: (p) => `http://127.0.0.1:${server.port}${p}`, error: /must use https/ },
    { name: 'a URL with a fragment', path: '/frag/client.json', url: (p) => `${docUrl(p)}#me`, error: /must not contain a fragment/ },
    { name: 'a URL with credentials', path: '/cred/client.json', url: (p) => `https://user:pw@127.0.0.1:${server.port}${p}`, error: /must not contain a username or password/ },
    { name: 'a URL without a path', path: '/', error: /must have a path/ },
    { name: 'a URL with dot segments', path: '/a/../client.json', error: /must not contain \. or \.\. path segments/ },
    { name: 'a document over the size cap (declared length)', path: '/big/client.json', route: (u) => ({ body: claudeShaped(u, { client_name: big }) }), error: /larger than 5120 bytes/ },
    {
      name: 'a document over the size cap (streamed, no length)',
      path: '/big-chunked/client.json',
      route: (u) => ({ headers: { 'transfer-encoding': 'chunked' }, body: claudeShaped(u, { client_name: big }) }),
      error: /larger than 5120 bytes/,
    },
    { name: 'a slow server (timeout)', path: '/slow/client.json', route: (u) => ({ delayMs: 2000, body: claudeShaped(u) }), opts: { timeoutMs: 300 }, error: /no complete answer within 300 ms/ },
    { name: 'a non-JSON body', path: '/html/client.json', route: () => ({ body: '<html>hello</html>' }), error: /it is not JSON/ },
    { name: 'a non-JSON content type', path: '/text/client.json', route: () => ({ headers: { 'content-type': 'text/html' }, body: '{}' }), error: /served as text\/html/ },
    { name: 'a JSON array', path: '/array/client.json', route: () => ({ body: '[]' }), error: /not a JSON object/ },
    { name: 'a client_id that differs from the URL', path: '/mismatch/client.json', route: () => ({ body: claudeShaped('https://claude.ai/client.json') }), error: /client_id "https:\/\/claude\.ai\/client\.json" is not the URL it was fetched from/ },
    { name: 'a 3xx redirect (not followed)', path: '/moved/client.json', route: () => ({ status: 302, headers: { location: 'https://169.254.169.254/latest/meta-data/' } }), error: /answered a redirect \(HTTP 302\)/ },
    { name: 'a 404', path: '/missing/client.json', route: () => ({ status: 404 }), error: /answered HTTP 404/ },
    { name: 'a javascript: redirect URI', path: '/js/client.json', route: (u) => ({ body: claudeShaped(u, { redirect_uris: ['javascript:alert(1)'] }) }), error: /redirect_uri "javascript:alert\(1\)"/ },
    { name: 'no redirect URIs', path: '/none/client.json', route: (u) => ({ body: claudeShaped(u, { redirect_uris: [] }) }), error: /redirect_uris must list at least one/ },
    { name: 'a client_secret in the document', path: '/secret/client.json', route: (u) => ({ body: claudeShaped(u, { client_secret: 's3cret' }) }), error: /must not carry a shared secret/ },
    { name: 'a shared-secret auth method', path: '/basic/client.json', route: (u) => ({ body: claudeShaped(u, { token_endpoint_auth_method: 'client_secret_basic' }) }), error: /must be none or private_key_jwt/ },
    { name: 'private_key_jwt without keys', path: '/nokeys/client.json', route: (u) => ({ body: claudeShaped(u, { token_endpoint_auth_method: 'private_key_jwt' }) }), error: /jwks_uri is required/ },
    { name: 'an http jwks_uri', path: '/httpjwks/client.json', route: (u) => ({ body: claudeShaped(u, { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://x.example/jwks' }) }), error: /jwks_uri must be an https URL/ },
    { name: '127.0.0.1 without the test setting', path: '/loop/client.json', opts: { testLoopbackCa: undefined }, error: /could not be fetched: its host is a loopback address/ },
    { name: '[::1] literal without the test setting', path: '/v6/client.json', url: (p) => `https://[::1]:${server.port}${p}`, opts: { testLoopbackCa: undefined }, error: /its host is a loopback address/ },
    { name: 'a name resolving (stub DNS) to ::1 without the test setting', path: '/x.json', url: (p) => `https://v6loopback.test:${server.port}${p}`, opts: { testLoopbackCa: undefined }, error: /resolves to a loopback address/ },
    { name: 'a name resolving (stub DNS) to 169.254.169.254, cloud metadata', path: '/x.json', url: (p) => `https://metadata.test${p}`, error: /could not be fetched: resolves to a link-local address/ },
    { name: 'a name resolving (stub DNS) to 10.x', path: '/x.json', url: (p) => `https://private.test${p}`, error: /resolves to a private address/ },
    { name: 'a name resolving (stub DNS) to a ULA fd00::/8', path: '/x.json', url: (p) => `https://ula.test${p}`, error: /resolves to a private address/ },
    { name: 'a name resolving (stub DNS) to IPv4-mapped ::ffff:169.254.169.254', path: '/x.json', url: (p) => `https://mapped.test${p}`, error: /resolves to a link-local address/ },
    { name: 'a name resolving (stub DNS) to CGNAT 100.64/10', path: '/x.json', url: (p) => `https://cgnat.test${p}`, error: /resolves to a shared \(CGNAT\) address/ },
    { name: 'a name resolving (stub DNS) to one public and one private address', path: '/x.json', url: (p) => `https://mixed.test${p}`, error: /resolves to a private address/ },
    { name: 'the metadata IP as a literal', path: '/latest/meta-data', url: (p) => `https://169.254.169.254${p}`, error: /its host is a link-local address/ },
    { name: 'a name that does not resolve', path: '/x.json', url: (p) => `https://nowhere.test${p}`, error: /does not resolve/ },
  ];

  it.each(cases)('$name', async ({ path, url, route, opts, error }) => {
    const target = url ? url(path) : docUrl(path);
    if (route) server.route(path, route(target));
    const before = server.requests.length;
    const err = await documents(opts).resolve(target).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidClientError);
    expect((err as InvalidClientError).errorCode).toBe('invalid_client');
    expect((err as Error).message).toMatch(error);
    expect((err as Error).message).toContain(target.split('#')[0]!.replace(/\/\/user:pw@/, '//'));
    // Refusals before the request reach no server at all.
    if (!route) expect(server.requests.length).toBe(before);
  });
});

describe('cache', () => {
  it('a document that changes between fetches: the cached copy holds until it expires, then the new one applies', async () => {
    const path = '/changing/client.json';
    const url = docUrl(path);
    server.route(path, { headers: { 'cache-control': 'max-age=600' }, body: claudeShaped(url) });
    const docs = documents();
    expect((await docs.resolve(url)).redirect_uris).toEqual(['https://claude.ai/api/mcp/auth_callback']);
    server.route(path, { body: claudeShaped(url, { redirect_uris: ['https://claude.com/api/mcp/auth_callback'] }) });
    clock += 599_000;
    expect((await docs.resolve(url)).redirect_uris, 'within max-age: the old set').toEqual(['https://claude.ai/api/mcp/auth_callback']);
    clock += 2_000;
    expect((await docs.resolve(url)).redirect_uris, 'after max-age: the new set').toEqual(['https://claude.com/api/mcp/auth_callback']);
    expect(server.requests.filter((r) => r === path)).toHaveLength(2);
  });

  it('a document that turns bad after expiry is refused, not served stale', async () => {
    const path = '/turns-bad/client.json';
    const url = docUrl(path);
    server.route(path, { body: claudeShaped(url) });
    const docs = documents();
    await docs.resolve(url);
    server.route(path, { body: claudeShaped(url, { redirect_uris: ['javascript:alert(1)'] }) });
    clock += 25 * 3600 * 1000;
    await expect(docs.resolve(url)).rejects.toThrow(/javascript:alert/);
  });

  it('failures are not cached: a fixed document is used on the next try', async () => {
    const path = '/fixed/client.json';
    const url = docUrl(path);
    server.route(path, { status: 500 });
    const docs = documents();
    await expect(docs.resolve(url)).rejects.toThrow(/HTTP 500/);
    server.route(path, { body: claudeShaped(url) });
    expect((await docs.resolve(url)).client_id).toBe(url);
  });

  it('concurrent lookups of one URL share one fetch', async () => {
    const path = '/shared/client.json';
    const url = docUrl(path);
    server.route(path, { delayMs: 100, body: claudeShaped(url) });
    const docs = documents();
    await Promise.all([docs.resolve(url), docs.resolve(url), docs.resolve(url)]);
    expect(server.requests.filter((r) => r === path)).toHaveLength(1);
  });

  it('fetches under way at once are bounded: one more different URL is answered temporarily_unavailable', async () => {
    const docs = documents({ maxConcurrentFetches: 2 });
    for (const n of [1, 2, 3]) server.route(`/busy/${n}.json`, { delayMs: 200, body: claudeShaped(docUrl(`/busy/${n}.json`)) });
    const first = docs.resolve(docUrl('/busy/1.json'));
    const second = docs.resolve(docUrl('/busy/2.json'));
    await expect(docs.resolve(docUrl('/busy/3.json'))).rejects.toMatchObject({ errorCode: 'temporarily_unavailable' });
    await Promise.all([first, second]);
    expect((await docs.resolve(docUrl('/busy/3.json'))).client_id, 'once they finish, it is fetched').toBe(docUrl('/busy/3.json'));
  });

  /** The document server, under another name (the stub resolver sends it to 127.0.0.1). */
  const at = (host: string, path: string) => `https://${host}:${new URL(server.origin).port}${path}`;

  it('issue 26 #14: slow documents on one site hold only that site’s fetch slots; a document from another site is still fetched', async () => {
    const docs = documents();
    const slow = Array.from({ length: 20 }, (_, n) => at('slow.example', `/slow/${n}.json`));
    for (const url of slow) server.route(new URL(url).pathname, { delayMs: 400, body: claudeShaped(url) });
    const attempts = slow.map((url) => docs.resolve(url).then(() => 'ok', (e: { errorCode?: string; message: string }) => `${e.errorCode}: ${e.message}`));
    const other = at('other.example', '/fine/client.json');
    server.route('/fine/client.json', { body: claudeShaped(other) });
    expect((await docs.resolve(other)).client_id).toBe(other);
    const outcomes = await Promise.all(attempts);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(4);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual(Array(16).fill('temporarily_unavailable: Too many client metadata documents are being fetched from slow.example; try again shortly'));
  });

  it('issue 26 #14: when no fetch can start, a copy that expired less than a day ago stands in', async () => {
    const docs = documents({ maxConcurrentFetches: 2 });
    const known = at('other.example', '/known/client.json');
    server.route('/known/client.json', { headers: { 'cache-control': 'max-age=600' }, body: claudeShaped(known) });
    await docs.resolve(known);
    clock += 3600_000;
    const busy = [1, 2].map((n) => at(n === 1 ? 'slow.example' : 'cimd.test', `/hold/${n}.json`));
    for (const url of busy) server.route(new URL(url).pathname, { delayMs: 300, body: claudeShaped(url) });
    const held = busy.map((url) => docs.resolve(url));
    const before = server.requests.filter((r) => r === '/known/client.json').length;
    expect((await docs.resolve(known)).client_id, 'the expired copy').toBe(known);
    expect(server.requests.filter((r) => r === '/known/client.json')).toHaveLength(before);
    await Promise.all(held);
  });

  it.each([
    ['absent', undefined, 3600],
    ['max-age within bounds', 'public, max-age=7200', 7200],
    ['max-age below the floor', 'max-age=10', 300],
    ['max-age above the ceiling', 'max-age=9999999', 86400],
    ['no-store', 'no-store', 300],
    ['no-cache', 'no-cache, max-age=7200', 300],
    ['garbage', 'max-age=soon', 3600],
  ])('lifetime when Cache-Control is %s', (_name, header, seconds) => {
    expect(cacheSeconds(header, { min: 300, max: 86400, fallback: 3600 })).toBe(seconds);
  });
});

describe('address classification (ipaddr.js ranges, allow-list of public unicast)', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['::1', 'a loopback address'],
    ['10.0.0.1', 'a private address'],
    ['172.16.5.4', 'a private address'],
    ['192.168.0.1', 'a private address'],
    ['fc00::1', 'a private address'],
    ['169.254.169.254', 'a link-local address'],
    ['fe80::1', 'a link-local address'],
    ['224.0.0.1', 'a multicast address'],
    ['ff02::1', 'a multicast address'],
    ['0.0.0.0', 'an unspecified address'],
    ['::', 'an unspecified address'],
    ['100.64.0.1', 'a shared (CGNAT) address'],
    ['198.18.0.1', 'a reserved address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:10.0.0.1', 'a private address'],
    ['64:ff9b::a00:1', 'a rfc6052 address'],
    ['2002:a00:1::', 'a 6to4 address'],
  ])('%s is %s', (address, why) => {
    expect(blockedRange(address)).toBe(why);
  });

  // IANA's special-purpose registries (IPv4, IPv6) and RFC 4291 §2.4: only global unicast may be fetched.
  it.each([
    ['64:ff9b:1::a00:1', 'local-use NAT64 (RFC 8215)'],
    ['fec0::1', 'deprecated site-local (RFC 3879)'],
    ['5f00::1', 'SRv6 SIDs (RFC 9602)'],
    ['3fff::1', 'documentation (RFC 9637)'],
    ['2001:db8::1', 'documentation (RFC 3849)'],
    ['2001:2::1', 'benchmarking (RFC 5180)'],
    ['2001::1', 'Teredo (RFC 4380)'],
    ['2620:4f:8000::1', 'AS112 (RFC 7534)'],
    ['100::1', 'discard-only (RFC 6666)'],
    ['4000::1', 'outside 2000::/3, unassigned'],
    ['192.0.0.9', 'IETF protocol assignments (RFC 6890)'],
    ['192.0.2.1', 'documentation (RFC 5737)'],
    ['192.88.99.1', '6to4 relay anycast (RFC 7526)'],
    ['192.31.196.1', 'AS112 (RFC 7535)'],
    ['240.0.0.1', 'reserved (RFC 1112)'],
  ])('issue 26 #15: %s (%s) is refused', (address) => {
    expect(blockedRange(address)).toEqual(expect.any(String));
  });

  it.each(['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c', '1.1.1.1'])('%s is public', (address) => {
    expect(blockedRange(address)).toBeUndefined();
  });

  it('loopback passes only with the test setting, and nothing else does', () => {
    expect(blockedRange('127.0.0.1', { allowLoopback: true })).toBeUndefined();
    expect(blockedRange('::1', { allowLoopback: true })).toBeUndefined();
    expect(blockedRange('10.0.0.1', { allowLoopback: true })).toBe('a private address');
    expect(blockedRange('169.254.169.254', { allowLoopback: true })).toBe('a link-local address');
  });
});

describe('client identifier URL rules', () => {
  it.each([
    ['https://chatgpt.com/oauth/abc/client.json', undefined],
    ['https://example.com:8443/c?v=1', undefined],
    ['https://EXAMPLE.com/c', 'is not in normal form (https://example.com/c)'],
    ['https://example.com', 'must have a path'],
    ['https://example.com/%2e%2e/c', 'must not contain . or .. path segments'],
    ['not a url', 'is not a URL'],
  ])('%s', (url, problem) => {
    expect(checkClientIdUrl(url)).toBe(problem);
  });
});
