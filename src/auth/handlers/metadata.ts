import cors from 'cors';
import express from 'express';
import { allowedMethods } from './allowedMethods.js';

/**
 * GET a fixed metadata document as JSON: authorization server metadata
 * (RFC 8414 §3) or protected resource metadata (RFC 9728 §3). Any origin may
 * read it, since browser-based MCP clients discover cross-origin; GET and the
 * CORS preflight only. Caching is Express's: a weak ETag, so a client that
 * sends If-None-Match gets 304 (the documents change only on restart).
 *
 * Mount it with `router.use(path, metadataHandler(doc))`: it answers the
 * path itself, and lets longer paths fall through.
 */
export function metadataHandler(document: object): express.Router {
  const body = structuredClone(document);
  const router = express.Router();
  router.use(cors());
  router.use(allowedMethods(['GET', 'OPTIONS']));
  router.get('/', (_req, res) => {
    res.status(200).json(body);
  });
  return router;
}
