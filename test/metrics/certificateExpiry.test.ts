import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../scripts/hydra.js';
import { createLogger } from '../../src/log/logger.js';
import { certificateExpiry } from '../../src/metrics/certificateExpiry.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { makeTestCa, type TestCa } from '../support/testCa.js';
import { sample } from '../support/metricSamples.js';

/**
 * public_url_certificate_expiry_timestamp_seconds: the notAfter of the
 * certificate a real https server presents (signed by a throw-away CA nothing
 * trusts: it is read, not trusted), kept for the cache period; a server that
 * cannot be reached leaves the gauge out of the scrape and is logged once.
 */
describe('certificateExpiry: the public URL certificate gauge', () => {
  let ca: TestCa;
  let server: Server;
  let url: URL;
  let notAfter: number;

  beforeAll(async () => {
    ca = await makeTestCa(['localhost']);
    notAfter = Date.parse(new X509Certificate(ca.serverCert).validTo) / 1000;
    server = createServer({ cert: ca.serverCert, key: ca.serverKey }, (_req, res) => res.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = new URL(`https://localhost:${(server.address() as AddressInfo).port}/`);
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await ca.remove();
  });

  it("reports the certificate's notAfter, in seconds since the epoch, at scrape time", async () => {
    const metrics = new Metrics();
    metrics.certificateExpiryGauge(certificateExpiry({ url, log: createLogger('silent') }));
    expect(await sample(metrics, 'public_url_certificate_expiry_timestamp_seconds')).toBe(notAfter);
  });

  it('asks the server at most once per cache period (scrapes in between are answered from memory)', async () => {
    let connections = 0;
    const counting = (): void => void connections++;
    server.on('connection', counting);
    try {
      let now = 0;
      const read = certificateExpiry({ url, log: createLogger('silent'), now: () => now, cacheMs: 60_000 });
      expect(await read()).toBe(notAfter);
      now += 59_000;
      expect(await read()).toBe(notAfter);
      expect(connections).toBe(1);
      now += 2_000;
      expect(await read()).toBe(notAfter);
      expect(connections).toBe(2);
    } finally {
      server.off('connection', counting);
    }
  });

  it('nothing listening: the gauge is absent (the scrape still succeeds), and one warning is logged however often it is scraped', async () => {
    const lines: string[] = [];
    const metrics = new Metrics();
    let now = 0;
    metrics.certificateExpiryGauge(certificateExpiry({ url: new URL(`https://localhost:${await freeLoopbackPort()}/`), log: createLogger('warn', (l) => lines.push(l)), now: () => now, retryMs: 1000 }));
    for (let i = 0; i < 3; i++) {
      now += 2_000;
      expect(await metrics.registry.metrics()).not.toMatch(/^public_url_certificate_expiry_timestamp_seconds /m);
    }
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["cannot read the public URL's certificate; its expiry is not reported until it can be"]);
  });
});
