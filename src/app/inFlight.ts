import type { RequestHandler } from 'express';

/**
 * Counts requests being served, so shutdown can wait for them. Long-lived
 * event streams (GET /sse, GET /mcp) are left out: they are closed, not waited for.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  readonly middleware: RequestHandler = (req, res, next) => {
    if (req.method === 'GET' && (req.path === '/sse' || req.path === '/mcp')) return next();
    this.count++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };

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
