/** A failed call to Hydra, carrying Hydra's OAuth-style error body when it sent one. */
export class HydraError extends Error {
  override name = 'HydraError';
  constructor(
    /** HTTP status Hydra answered with; 0 when Hydra could not be reached or did not answer in time. */
    readonly status: number,
    /** OAuth error code from Hydra's body (`error`), e.g. "invalid_grant". */
    readonly error: string,
    /** Hydra's human description (`error_description`). */
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super(`Hydra answered ${status || 'nothing'}: ${error}${description ? ` (${description})` : ''}`, options);
  }
  /** True when Hydra was unreachable or failed on its side. */
  get unavailable(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

/** Read Hydra's error body ({error, error_description} or {error: {message}}) into a HydraError. */
export async function hydraErrorFrom(res: Response): Promise<HydraError> {
  let error = 'server_error';
  let description = res.statusText;
  try {
    const body = (await res.json()) as Record<string, unknown>;
    if (typeof body.error === 'string') {
      error = body.error;
      description = typeof body.error_description === 'string' ? body.error_description : '';
    } else if (body.error && typeof body.error === 'object') {
      // Hydra's admin API wraps errors as {error: {status, message, reason}}.
      const e = body.error as Record<string, unknown>;
      error = typeof e.status === 'string' ? e.status.toLowerCase().replace(/\s+/g, '_') : error;
      description = [e.message, e.reason].filter((x) => typeof x === 'string' && x).join(': ');
    }
  } catch {
    // Not JSON: keep the status text.
  }
  return new HydraError(res.status, error, description);
}
