import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchJsonDocument, FetchRefused } from '../../src/auth/cimd/fetchDocument.js';
import { withSpan } from '../../src/tracing/spans.js';
import { startTracing, type Tracing } from '../../src/tracing/startTracing.js';
import { type DocumentServer, makeTestCa, startDocumentServer, type TestCa } from '../support/testCa.js';

/**
 * Client metadata documents are fetched with node:https (address checked
 * after DNS), which the fetch instrumentation does not see: the fetch makes
 * its own client span, its URL scrubbed like every other.
 */
describe('tracing: a client metadata document fetch', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let ca: TestCa;
  let server: DocumentServer;
  const options = () => ({ resolver: async () => [{ address: '127.0.0.1', family: 4 }], allowLoopback: true, extraCa: ca.caPem, maxBytes: 10_000, timeoutMs: 5000 });

  beforeAll(async () => {
    tracing = await startTracing({}, { exporters: [exporter] });
    ca = await makeTestCa(['cimd.test']);
    server = await startDocumentServer(ca);
  }, 30_000);
  afterAll(async () => {
    await server?.close();
    await ca?.remove();
    await tracing?.shutdown();
  });

  it('is a client span under the request, with the id in its path scrubbed; a refusal marks it failed', async () => {
    server.route('/oauth/a1b2c3d4e5f6a7b8/client.json', { body: { client_id: 'x' } });
    const url = (path: string) => new URL(`https://cimd.test:${server.port}${path}`);
    await withSpan('request', { root: true }, async () => {
      await fetchJsonDocument(url('/oauth/a1b2c3d4e5f6a7b8/client.json'), options());
      await expect(fetchJsonDocument(url('/missing.json'), options())).rejects.toBeInstanceOf(FetchRefused);
    });
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((s) => s.name === 'request')!;
    const [ok, refused] = spans.filter((s) => s.name === 'GET');
    expect(ok!.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(ok!.attributes).toMatchObject({ 'http.request.method': 'GET', 'server.address': 'cimd.test', 'url.full': `https://cimd.test:${server.port}/oauth/{id}/client.json` });
    expect(refused!.status.code).toBe(2); // ERROR
    expect(refused!.attributes['error.type']).toBe('FetchRefused');
  });
});
