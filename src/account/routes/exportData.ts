import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express from 'express';
import { z } from 'zod';
import { CsrfField } from '../../web/csrf.js';
import { parse, SECURITY_HEADERS } from '../../web/pageKit.js';
import { type AccountContext, requireSession } from './context.js';

const CsrfForm = z.object({ csrf: CsrfField });

/**
 * POST /account/export: everything stored for the person, as one JSON
 * download. `exportData` yields the pieces of the document
 * (src/store/export.ts; the CLI's `export` prints the same).
 */
export function exportDataRoute(ctx: AccountContext, exportData: (sub: string) => AsyncIterable<string>): express.Router {
  const { page, form, log, now } = ctx;
  const router = express.Router();
  router.post('/account/export', form, page(async (req, res) => {
    const input = parse(CsrfForm, req.body, 'form');
    const sub = await requireSession(ctx, req, input.csrf);
    const pieces = exportData(sub)[Symbol.asyncIterator]();
    // The first piece before any header: a failing database still gets the usual error page.
    const first = await pieces.next();
    const rest = { [Symbol.asyncIterator]: () => pieces };
    res
      .status(200)
      .set({ ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' })
      .attachment(`hydra-mcp-data-${new Date(now()).toISOString().slice(0, 10)}.json`);
    log.info('data export by user', { sub });
    try {
      await pipeline(Readable.from((async function* () {
        if (!first.done) yield first.value;
        yield* rest;
      })()), res);
    } catch (e) {
      // Headers are gone: the download is cut short (the browser reports it failed), never a page.
      log.error('data export failed part-way', { sub, error: e });
    }
  }));
  return router;
}
