import { isLoopbackHost } from '../lib/loopback.js';

/**
 * The URLs browsers and clients use must be https unless they stay on this
 * machine. One line per offending variable; empty when all is well. Runs
 * before anything is started, so our message comes before any other
 * ("Issuer URL must be HTTPS") and nothing is half-up.
 */
export function insecurePublicUrls(urls: Record<string, string | undefined>, production: boolean): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(urls)) {
    if (value === undefined || !URL.canParse(value)) continue;
    const u = new URL(value);
    if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
      const why = production ? 'with NODE_ENV=production' : '(OAuth metadata needs an https issuer, RFC 8414 §2)';
      problems.push(`  ${name}: must be https:// ${why} (${u.origin} is plain http on a host other than loopback); put a TLS-terminating proxy in front (docs/operating.md, "Production")`);
    }
  }
  return problems;
}
