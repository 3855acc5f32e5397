import type { Response } from 'express';

/** A JSON-RPC 2.0 error with no request id, for failures before a message is read. */
export function jsonRpcError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}
