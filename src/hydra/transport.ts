import { HydraError, hydraErrorFrom } from './errors.js';
import { callName } from './endpoints.js';

export type FetchLike = typeof fetch;

/**
 * The one timeout for every call to Hydra, admin or public. Hydra answers in
 * milliseconds on loopback; a call still open after this is treated as
 * Hydra being unavailable (HydraError status 0), never retried here: the
 * caller's client retries, and readiness reports the outage.
 */
export const HYDRA_TIMEOUT_MS = 5000;

export interface HydraTransportOptions {
  /** Injectable for tests; defaults to the global fetch (undici, kept-alive connections). */
  fetch?: FetchLike;
  /** Per-call timeout in milliseconds (default HYDRA_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Told the duration of every call (for metrics); `call` is "METHOD /path" with ids replaced by placeholders. */
  onCall?: (call: string, seconds: number, ok: boolean) => void;
}

export type Body = { json?: unknown; form?: URLSearchParams };

export interface HydraTransport {
  /**
   * One HTTP exchange with Hydra: the answer whatever its status, or a
   * HydraError with status 0 when Hydra could not be reached in time.
   */
  send(method: string, url: URL, body?: Body, headers?: Record<string, string>): Promise<Response>;
  /** `send`, then Hydra's JSON answer; a non-2xx answer becomes a HydraError. */
  json<T>(method: string, url: URL, body?: Body): Promise<T>;
}

export function createHydraTransport(options: HydraTransportOptions = {}): HydraTransport {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? HYDRA_TIMEOUT_MS;

  async function send(method: string, url: URL, body?: Body, extra?: Record<string, string>): Promise<Response> {
    const started = performance.now();
    let ok = false;
    try {
      const res = await doFetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body?.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(body?.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          ...extra,
        },
        body: body?.json !== undefined ? JSON.stringify(body.json) : body?.form?.toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      ok = res.ok;
      return res;
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === 'TimeoutError';
      throw new HydraError(0, 'temporarily_unavailable', timedOut ? `Hydra did not answer within ${timeoutMs} ms` : 'Hydra unreachable', { cause });
    } finally {
      options.onCall?.(callName(method, url), (performance.now() - started) / 1000, ok);
    }
  }

  return {
    send,
    async json<T>(method: string, url: URL, body?: Body): Promise<T> {
      const res = await send(method, url, body);
      if (!res.ok) throw await hydraErrorFrom(res);
      if (res.status === 204) return undefined as T;
      try {
        return (await res.json()) as T;
      } catch (cause) {
        // The body timed out or was not JSON: Hydra failed, as far as the caller can tell.
        throw new HydraError(0, 'temporarily_unavailable', 'Hydra sent an unreadable answer', { cause });
      }
    },
  };
}
