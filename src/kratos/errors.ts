/** A failed call to Kratos, carrying Kratos's error body ({error: {id, code, message, reason, details}}) when it sent one. */
export class KratosError extends Error {
  override name = 'KratosError';
  constructor(
    /** HTTP status Kratos answered with; 0 when Kratos could not be reached or did not answer in time. */
    readonly status: number,
    /** Kratos's stable error id when it gave one, e.g. "self_service_flow_expired", "security_csrf_violation". */
    readonly id: string,
    /** Kratos's human message (`message`, then `reason` when it adds one): safe to show a person. */
    readonly description: string,
    /** Kratos's `details` (e.g. `return_to` of an expired flow). */
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(`Kratos answered ${status || 'nothing'}${id ? ` ${id}` : ''}${description ? ` (${description})` : ''}`, options);
  }
  /** True when Kratos was unreachable or failed on its side. */
  get unavailable(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

/** Read Kratos's error body into a KratosError (a body that is not JSON keeps the status text). */
export async function kratosErrorFrom(res: Response): Promise<KratosError> {
  let id = '';
  let description = res.statusText;
  let details: Record<string, unknown> = {};
  try {
    const body = (await res.json()) as { error?: Record<string, unknown> };
    const e = body.error;
    if (e && typeof e === 'object') {
      if (typeof e.id === 'string') id = e.id;
      const text = [e.message, e.reason].filter((x): x is string => typeof x === 'string' && x !== '');
      if (text.length) description = [...new Set(text)].join(' ');
      if (e.details && typeof e.details === 'object') details = e.details as Record<string, unknown>;
    }
  } catch {
    // Not JSON: keep the status text.
  }
  return new KratosError(res.status, id, description, details);
}
