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

export interface OriginPolicy {
  /** Exact origins allowed, e.g. https://app.example.com; "*" allows any. */
  origins: ReadonlySet<string>;
  /** Allow any http(s) origin on a loopback host (any port): local browser clients such as MCP Inspector. */
  loopback: boolean;
}

/** The default policy: our own origin, plus any loopback origin when we run on loopback. */
export function originPolicy(publicBaseUrl: URL, extra: readonly string[]): OriginPolicy {
  return { origins: new Set([publicBaseUrl.origin, ...extra]), loopback: LOOPBACK.includes(publicBaseUrl.hostname) };
}

/**
 * MCP transports (2025-06-18 §Security Warning): servers MUST validate
 * `Origin` to prevent DNS rebinding. Requests without one (non-browser
 * clients) pass; a browser page from another origin gets 403.
 */
export function originGuard(policy: OriginPolicy): RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (!origin || policy.origins.has('*') || policy.origins.has(origin)) return next();
    if (policy.loopback) {
      try {
        const u = new URL(origin);
        if ((u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK.includes(u.hostname)) return next();
      } catch {
        // not a URL: refused below
      }
    }
    res.status(403).json({ jsonrpc: '2.0', error: { code: -32000, message: `Origin ${origin.slice(0, 100)} is not allowed` }, id: null });
  };
}
