import { pino } from 'pino';
import { redact } from './redact.js';

/**
 * A structured logger: one JSON object per line on stderr (or `sink`), with
 * `time` (ISO 8601), `level` (its name), the logger's and the call's fields,
 * and `msg`.
 *
 * Choice: pino writes the lines; redaction stays our key pattern (./redact.ts, as pino's formatters.log), as pino's `redact` matches listed paths only and a tool's `{ github_token }` would leak.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const redactFields = (fields: Record<string, unknown>) => redact(fields) as Record<string, unknown>;

/**
 * A logger at `level` ("silent" writes nothing). `sink` receives each line
 * without its newline (the tests capture lines this way); by default lines go
 * to stderr synchronously, so nothing is lost on exit and lines keep their order.
 */
export function createLogger(level: LogLevel, sink?: (line: string) => void): Logger {
  const destination = sink
    ? { write: (line: string) => sink(line.replace(/\n$/, '')) }
    : level === 'silent'
      ? { write: () => {} }
      : pino.destination({ fd: 2, sync: true });
  const root = pino(
    {
      level,
      base: null, // no pid / hostname: the fields are ours
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors at any key were serialised (and redacted) by formatters.log; pino's
      // default `err` serializer would take the result for an error again and rename its type.
      serializers: { err: (value: unknown) => value },
      formatters: {
        level: (label) => ({ level: label }),
        log: redactFields,
      },
    },
    destination,
  );
  return wrap(root);
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
    // pino's formatters.bindings sees only the root's bindings, never a child's: redact them here.
    child: (fields) => wrap(p.child(redactFields(fields))),
  };
}
