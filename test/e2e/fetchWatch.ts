/**
 * What a TLS test sees of every fetch in its process (the SDK client, the
 * person's browser, our server's calls to Hydra): the URLs fetched, and the
 * Set-Cookie lines and Strict-Transport-Security values of our server's
 * answers. It observes; it changes no request or answer.
 */
export interface FetchWatch {
  visited: string[];
  ourCookies: string[];
  ourHsts: Set<string | null>;
  /** Puts the real fetch back. */
  stop(): void;
}

/** Watch every fetch from now on; `ourOrigin` is read per answer (the test learns it after its ports). */
export function watchFetch(ourOrigin: () => string | undefined): FetchWatch {
  const realFetch = globalThis.fetch;
  const watch: FetchWatch = { visited: [], ourCookies: [], ourHsts: new Set(), stop: () => void (globalThis.fetch = realFetch) };
  globalThis.fetch = async (input, init) => {
    const res = await realFetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    watch.visited.push(url.href);
    if (url.origin === ourOrigin()) {
      watch.ourCookies.push(...res.headers.getSetCookie());
      watch.ourHsts.add(res.headers.get('strict-transport-security'));
    }
    return res;
  };
  return watch;
}

/** The pages the person's browser visited, without the client's own redirect. */
export const pagesSeen = (history: readonly string[], redirectUrl: string): string[] => history.map((h) => h.split(' ')[1]!).filter((u) => !u.startsWith(redirectUrl));

/** A JWT access token's issuer and audience (read, not verified: the server verified it). */
export const jwtClaims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { iss: string; aud: string[]; iat: number; exp: number };
