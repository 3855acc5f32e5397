import type { RequestHandler } from 'express';

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The Host names this server answers to: the public URL's host, its loopback
 * aliases when that host is loopback, and any extra ones configured.
 */
export function allowedHosts(publicBaseUrl: URL, extra: readonly string[]): Set<string> {
  const hosts = new Set([publicBaseUrl.host.toLowerCase(), ...extra.map((h) => h.toLowerCase())]);
  if (LOOPBACK.includes(publicBaseUrl.hostname)) {
    const port = publicBaseUrl.port ? `:${publicBaseUrl.port}` : '';
    for (const name of LOOPBACK) hosts.add(`${name}${port}`);
  }
  return hosts;
}

/**
 * DNS-rebinding protection (MCP transport security): a page on evil.example
 * that rebinds its name to 127.0.0.1 still sends `Host: evil.example`, so
 * any request whose Host is not ours is refused before it reaches anything.
 * `/healthz` and `/readyz` stay open for probes that address the process by IP.
 */
export function hostGuard(hosts: ReadonlySet<string>): RequestHandler {
  return (req, res, next) => {
    if (req.path === '/healthz' || req.path === '/readyz') return next();
    const host = (req.headers.host ?? '').toLowerCase();
    if (hosts.has(host)) return next();
    res.status(421).type('text/plain').send(`Misdirected request: this server does not answer to host "${host.slice(0, 100)}"`);
  };
}
