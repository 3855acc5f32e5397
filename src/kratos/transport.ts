import { KratosError, kratosErrorFrom } from './errors.js';

export type FetchLike = typeof fetch;

/**
 * The one timeout for every call to Kratos, public or admin. A call still open
 * after this is treated as Kratos being unavailable (KratosError status 0);
 * nothing is retried here: the person's next click is the retry.
 */
export const KRATOS_TIMEOUT_MS = 5000;

export interface KratosTransportOptions {
  /** Injectable for tests; defaults to the global fetch. */
  fetch?: FetchLike;
  /** Per-call timeout in milliseconds (default KRATOS_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface KratosTransport {
  /** One exchange with Kratos: the answer whatever its status, or a KratosError with status 0 when Kratos could not be reached in time. */
  send(method: string, url: URL, json?: unknown, headers?: Record<string, string>): Promise<Response>;
  /** `send`, then Kratos's JSON answer; a non-2xx answer becomes a KratosError. */
  json<T>(method: string, url: URL, json?: unknown, headers?: Record<string, string>): Promise<T>;
}

export function createKratosTransport(options: KratosTransportOptions = {}): KratosTransport {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? KRATOS_TIMEOUT_MS;

  async function send(method: string, url: URL, json?: unknown, headers?: Record<string, string>): Promise<Response> {
    try {
      return await doFetch(url, {
        method,
        headers: { accept: 'application/json', ...(json !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: json !== undefined ? JSON.stringify(json) : undefined,
        // Kratos answers browser-style redirects for some errors; we want its JSON.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === 'TimeoutError';
      throw new KratosError(0, 'unavailable', timedOut ? `Kratos did not answer within ${timeoutMs} ms` : 'Kratos unreachable', {}, { cause });
    }
  }

  return {
    send,
    async json<T>(method: string, url: URL, json?: unknown, headers?: Record<string, string>): Promise<T> {
      const res = await send(method, url, json, headers);
      if (!res.ok) throw await kratosErrorFrom(res);
      if (res.status === 204) return undefined as T;
      try {
        return (await res.json()) as T;
      } catch (cause) {
        throw new KratosError(0, 'unavailable', 'Kratos sent an unreadable answer', {}, { cause });
      }
    },
  };
}
