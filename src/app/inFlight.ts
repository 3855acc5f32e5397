import type { RequestHandler } from 'express';

/**
 * Counts work being served, so shutdown can wait for it before the audit
 * writer and the database close: every HTTP request (the middleware), and
 * work that outlives its request, counted by whoever starts it (`begin`,
 * `track`): a tool call whose client went away runs on, and a legacy SSE
 * call runs after its POST was answered 202. Long-lived event streams
 * (GET /sse, GET /mcp) are left out: they are closed, not waited for.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  readonly middleware: RequestHandler = (req, res, next) => {
    if (req.method === 'GET' && (req.path === '/sse' || req.path === '/mcp')) return next();
    const end = this.begin();
    res.once('finish', end);
    res.once('close', end);
    next();
  };

  /** One piece of work has begun; the function returned ends it (once: later calls do nothing). */
  begin(): () => void {
    this.count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
  }

  /** Counts `work` until it settles; returns it unchanged. */
  track<T>(work: Promise<T>): Promise<T> {
    const end = this.begin();
    return work.finally(end);
  }

  get size(): number {
    return this.count;
  }

  /** Resolves true when nothing is in flight, false if `deadlineMs` passes first. */
  drained(deadlineMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), deadlineMs);
      timer.unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
