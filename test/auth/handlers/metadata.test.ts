import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataHandler } from '../../../src/auth/handlers/metadata.js';
import { serve } from './serve.js';

/** A metadata document route (RFC 8414 §3, RFC 9728 §3) on a real Express app. */
const DOC = { issuer: 'https://mcp.example/', scopes_supported: ['notes:read'] };
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = express();
  const doc = { ...DOC };
  app.use('/.well-known/oauth-authorization-server', metadataHandler(doc));
  doc.issuer = 'changed later'; // the handler keeps the document it was given
  ({ base, close } = await serve(app));
});
afterAll(() => close());

const at = (path = '/.well-known/oauth-authorization-server', init?: RequestInit) => fetch(new URL(path, base), init);

describe('metadataHandler', () => {
  it('serves the document as JSON to any origin, with an ETag', async () => {
    const res = await at(undefined, { headers: { origin: 'https://inspector.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('etag')).toMatch(/^W\//);
    expect(await res.json()).toEqual(DOC);
  });

  it('answers a revalidation with 304', async () => {
    const etag = (await at()).headers.get('etag')!;
    // An explicit Cache-Control stops fetch from adding `no-cache`, which forbids a 304.
    expect((await at(undefined, { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } })).status).toBe(304);
  });

  it('answers the CORS preflight', async () => {
    const res = await at(undefined, { method: 'OPTIONS', headers: { origin: 'https://x.example', 'access-control-request-method': 'GET' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it.each(['POST', 'PUT', 'DELETE', 'HEAD'])('%s is refused with 405 and Allow: GET, OPTIONS', async (method) => {
    const res = await at(undefined, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, OPTIONS');
  });

  it('lets a longer path fall through to the next route (here: 404)', async () => {
    expect((await at('/.well-known/oauth-authorization-server/mcp')).status).toBe(404);
  });
});
