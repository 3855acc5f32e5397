import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { BlockedAddressError, blockedLiteral, guardedLookup, type Resolver } from './publicAddress.js';
import { SpanKind, withSpan } from '../../tracing/spans.js';

export interface FetchDocumentOptions {
  resolver: Resolver;
  /** Let loopback addresses through (test deployments only; see CIMD_TEST_LOOPBACK_CA). */
  allowLoopback: boolean;
  /** Extra PEM certificate authority trusted besides the system's (the test CA). */
  extraCa?: string;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Whole exchange, connect to last byte, in milliseconds. */
  timeoutMs: number;
}

export interface FetchedDocument {
  /** The parsed JSON body. */
  json: unknown;
  /** The Cache-Control header, for the cache lifetime. */
  cacheControl?: string;
}

/** Why a fetch failed, worded to follow "could not be fetched: ". */
export class FetchRefused extends Error {
  override name = 'FetchRefused';
}

/**
 * GET one JSON document over https, safely: the address is checked after DNS
 * resolution and is the one connected to (guardedLookup); redirects are not
 * followed (a 3xx is an error, so no second address needs checking); the body
 * is streamed and abandoned past `maxBytes`; the whole exchange is bounded by
 * `timeoutMs`; no cookies or credentials are sent.
 */
export function fetchJsonDocument(url: URL, opts: FetchDocumentOptions): Promise<FetchedDocument> {
  // node:https, not fetch: the fetch instrumentation does not see it, so the client span is made here.
  // No traceparent is sent: the document's host is the client's, not part of our system.
  return withSpan('GET', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'GET', 'server.address': url.hostname, 'url.full': url.href } }, () => fetchOnce(url, opts));
}

function fetchOnce(url: URL, opts: FetchDocumentOptions): Promise<FetchedDocument> {
  const literal = blockedLiteral(url.hostname, opts);
  if (literal) return Promise.reject(new FetchRefused(`its host ${literal}`));
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new FetchRefused(why));
    };
    const req = request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        lookup: guardedLookup(opts),
        // Setting `ca` replaces the system roots, so they are kept alongside the test CA.
        ...(opts.extraCa ? { ca: [...rootCertificates, opts.extraCa] } : {}),
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return fail(`it answered a redirect (HTTP ${status}); redirects are not followed`);
        if (status !== 200) return fail(`it answered HTTP ${status}`);
        const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (type && type !== 'application/json' && !type.endsWith('+json')) return fail(`it is served as ${type}, not application/json`);
        const declared = Number(res.headers['content-length']);
        if (declared > opts.maxBytes) return fail(`it is larger than ${opts.maxBytes} bytes`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > opts.maxBytes) return fail(`it is larger than ${opts.maxBytes} bytes`);
          chunks.push(chunk);
        });
        res.on('error', (e) => fail(`the connection failed (${e.message})`));
        res.on('end', () => {
          if (settled) return;
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return fail('it is not JSON');
          }
          settled = true;
          clearTimeout(timer);
          const cacheControl = res.headers['cache-control'];
          resolve(cacheControl ? { json, cacheControl } : { json });
        });
      },
    );
    const timer = setTimeout(() => fail(`no complete answer within ${opts.timeoutMs} ms`), opts.timeoutMs);
    req.on('error', (e) => {
      if (e instanceof BlockedAddressError) return fail(e.message);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return fail(`its host ${url.hostname} does not resolve`);
      fail(`the connection failed (${code ?? e.message})`);
    });
    req.end();
  });
}
