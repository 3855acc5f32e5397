/** Build a `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, RFC 9728 §5.1); the one place they are written. */
export function wwwAuthenticate(params: {
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request';
  description?: string;
  /** Every scope the client needs, space-separated, for step-up (MCP 2025-11-25). */
  scope?: string;
  resourceMetadataUrl: string;
}): string {
  // Quoted-string values: strip what could break out of the quotes.
  const q = (v: string) => `"${v.replace(/["\\\r\n]/g, '')}"`;
  const parts: string[] = [];
  if (params.error) parts.push(`error=${q(params.error)}`);
  if (params.description) parts.push(`error_description=${q(params.description)}`);
  // SEP-2207 (MCP 2026-07-28): servers SHOULD NOT put `offline_access` in
  // challenges; whether to hold a refresh token is the client's choice with its
  // authorization server (our consent still offers it to refresh-grant clients).
  const scope = params.scope?.split(' ').filter((s) => s && s !== 'offline_access').join(' ');
  if (scope) parts.push(`scope=${q(scope)}`);
  parts.push(`resource_metadata=${q(params.resourceMetadataUrl)}`);
  return `Bearer ${parts.join(', ')}`;
}
