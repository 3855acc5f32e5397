import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { Logger } from '../log/logger.js';

export interface CertificateExpiryOptions {
  /** The public URL; https (the caller checks). */
  url: URL;
  log: Logger;
  /** How long one reading is kept (default an hour): a certificate changes rarely, and a handshake per scrape is waste. */
  cacheMs?: number;
  /** How long after a failed reading the next is tried (default five minutes). */
  retryMs?: number;
  /** Limit on the connection and handshake (default 2000 ms, the readiness checks' budget). */
  timeoutMs?: number;
  now?: () => number;
}

/**
 * The notAfter of the certificate the public URL presents, in seconds since
 * the epoch, for public_url_certificate_expiry_timestamp_seconds: read over a
 * TLS connection to its host and port, kept for an hour. A failure answers
 * undefined (the gauge is then left out; the scrape never fails) and is
 * logged once until a reading succeeds again.
 */
export function certificateExpiry(options: CertificateExpiryOptions): () => Promise<number | undefined> {
  const { url, log } = options;
  const now = options.now ?? Date.now;
  const cacheMs = options.cacheMs ?? 60 * 60_000;
  const retryMs = options.retryMs ?? 5 * 60_000;
  const timeoutMs = options.timeoutMs ?? 2000;
  // URL keeps an IPv6 host in brackets; a socket wants it bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 443);
  let kept: { notAfter: number | undefined; until: number } | undefined;
  let pending: Promise<number | undefined> | undefined;
  let warned = false;

  const read = async (): Promise<number | undefined> => {
    try {
      const notAfter = await readNotAfter(host, port, timeoutMs);
      warned = false;
      kept = { notAfter, until: now() + cacheMs };
      return notAfter;
    } catch (e) {
      if (!warned) log.warn('cannot read the public URL\'s certificate; its expiry is not reported until it can be', { host, port, error: e instanceof Error ? e.message : String(e) });
      warned = true;
      kept = { notAfter: undefined, until: now() + retryMs };
      return undefined;
    }
  };

  return async () => {
    if (kept && now() < kept.until) return kept.notAfter;
    // Scrapes that arrive during a reading share it.
    pending ??= read().finally(() => (pending = undefined));
    return pending;
  };
}

/** One TLS handshake with `host`, its certificate's notAfter in seconds; nothing is sent. */
function readNotAfter(host: string, port: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      // SNI names a host, never an address (RFC 6066 §3).
      ...(isIP(host) ? {} : { servername: host }),
      // An expired or untrusted certificate is exactly what must still be read: nothing is sent over this connection.
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    socket.once('secureConnect', () => {
      const notAfter = Date.parse(socket.getPeerCertificate().valid_to ?? '');
      socket.destroy();
      if (Number.isFinite(notAfter)) resolve(notAfter / 1000);
      else reject(new Error('the server presented no certificate'));
    });
    socket.once('timeout', () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', reject);
  });
}
