/**
 * The one error a tool throws on purpose: its message reaches the caller
 * verbatim (any other error is logged and replaced by a generic message). Its
 * own module so helpers of the tool contract can extend it without an import
 * cycle through contract.ts.
 */
export class ToolError extends Error {
  override name = 'ToolError';
}
