import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { principalOf } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import { traceIdOf } from '../tracing/httpSpans.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * One log line per request: id (the caller's X-Request-Id when sane, else a
 * new one, echoed back), method, path without the query (queries carry
 * challenges and session ids), status, duration, `sub` / client id once
 * the token is known, and the trace id when tracing is on. Headers and bodies
 * are never logged.
 */
export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.set('X-Request-Id', id);
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const principal = principalOf(req.auth);
      // Tracing on (src/tracing/): the line names its trace, so an operator goes from a log line to the trace.
      const traceId = traceIdOf(req);
      log.info('request', {
        request_id: id,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        duration_ms: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
        ...(principal ? { sub: principal.sub, client_id: principal.clientId } : {}),
        ...(traceId ? { trace_id: traceId } : {}),
      });
    });
    next();
  };
}
