import { stdSerializers } from 'pino';

/**
 * Field names whose values never reach a log line, matched anywhere in the
 * name and in any case: `token` covers access_token, refresh_token, id_token
 * and a tool's own `github_token`; `challenge` covers login_challenge,
 * consent_challenge and code_challenge; `verifier` covers code_verifier (RFC
 * 7636 §4.1) and Hydra's login_verifier / consent_verifier; `^code$` is the
 * authorization code (RFC 6749 §4.1.2) without catching `status_code`.
 */
export const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|api_?key|verifier|challenge|^code$/i;

export const REDACTED = '[redacted]';

/** Deeper than this, a value is replaced whole: no unread branch can carry a secret, and cycles end. */
const MAX_DEPTH = 8;

/**
 * A copy of `value` with the values of secret-looking keys replaced, at every
 * depth. Errors become pino's standard shape (type, message and stack with
 * their causes, and their own fields), which is then redacted the same way.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return redactEntries(stdSerializers.err(value), depth);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  // Dates, URLs and the like log as JSON.stringify would write them.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redact(toJSON.call(value), depth + 1);
  return redactEntries(value, depth);
}

function redactEntries(value: object, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REDACTED : redact(v, depth + 1);
  return out;
}
