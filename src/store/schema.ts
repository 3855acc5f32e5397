import type { ColumnType, Generated } from 'kysely';

/** Table layout. Every tool-data table carries `sub`, the owner's subject. */
export interface Database {
  users: UsersTable;
  notes: NotesTable;
  records: RecordsTable;
  removed_subjects: RemovedSubjectsTable;
  rate_counters: RateCountersTable;
  connections: ConnectionsTable;
  connect_states: ConnectStatesTable;
  audit_events: AuditEventsTable;
  kratos_subjects: KratosSubjectsTable;
  single_use_ids: SingleUseIdsTable;
  cimd_mirrors: CimdMirrorsTable;
  mcp_sessions: McpSessionsTable;
  mcp_stream_events: McpStreamEventsTable;
}

export interface UsersTable {
  /** Stable subject id (UUID) that becomes the token's `sub`. */
  id: string;
  /** Normalised (trimmed, lower-case) email; unique. */
  email: string;
  /** scrypt hash in the self-describing format of src/account/password.ts. */
  password_hash: string;
  created_at: ColumnType<string, string | undefined, never>;
}

export interface NotesTable {
  id: string;
  sub: string;
  title: string;
  body: string;
  created_at: ColumnType<string, string | undefined, never>;
  seq: Generated<number | string>;
}

/** One JSON value per (sub, collection, key): storage for tools without their own table. */
export interface RecordsTable {
  sub: string;
  collection: string;
  key: string;
  /** JSON text. */
  value: string;
  updated_at: string;
}

/**
 * One row per removed account: written first by a removal, so every replica
 * refuses the subject's tokens, and kept a while after it completes.
 */
export interface RemovedSubjectsTable {
  sub: string;
  /** SHA-256 (hex) of the normalised email, so a re-run by email finds the removal without keeping the address. */
  email_digest: string;
  /** ISO-8601; when the removal began (tokens refused from then on). */
  removed_at: string;
  /** ISO-8601 once every step is done; null while the removal is unfinished. */
  completed_at: string | null;
}

/**
 * Fixed-window hit counters shared by every replica (sign-in throttle,
 * endpoint rate limits). Keys are namespaced by their user ("login:", "rl:");
 * a row whose window has ended counts as absent and is swept.
 */
export interface RateCountersTable {
  key: string;
  hits: number;
  /** End of the current window, milliseconds since the epoch (PostgreSQL bigint comes back as text). */
  reset_at: ColumnType<number | string, number, number>;
}

/** Epoch-based number column: PostgreSQL bigint comes back as text. */
type EpochColumn = ColumnType<number | string, number, number>;
type NullableEpochColumn = ColumnType<number | string | null, number | null, number | null>;

/**
 * A person's credentials at another service (src/store/connectionsStore.ts):
 * one row per (sub, provider). Tokens only ever sealed (src/connections/sealing.ts).
 */
export interface ConnectionsTable {
  sub: string;
  provider: string;
  /** needs_reconnect: the provider refused the refresh token; the person must connect again. */
  status: 'active' | 'needs_reconnect';
  /** JWE compact: the StoredCredential, bound to (sub, provider). */
  sealed: string;
  /** The key id `sealed` was sealed with (re-encryption selects by it). */
  key_id: string;
  /** Granted scope, space-separated; null when the provider did not say. */
  scope: string | null;
  /** Access-token expiry, epoch seconds (also inside `sealed`); null when unknown. */
  expires_at: NullableEpochColumn;
  /** Epoch milliseconds. */
  created_at: EpochColumn;
  /** Epoch milliseconds. */
  updated_at: EpochColumn;
  /** Refresh lease: held until this time (epoch ms, the database's clock); null when free. */
  refresh_lease_until: NullableEpochColumn;
  /** Random id of the lease holder, so only it can write or release. */
  refresh_lease_owner: string | null;
}

/** A connect attempt in flight: taken (deleted) exactly once by the callback. */
export interface ConnectStatesTable {
  /** SHA-256 of the `state` sent to the provider; the state itself is never stored. */
  state_hash: string;
  sub: string;
  provider: string;
  /** The PKCE code_verifier, sealed. */
  sealed_verifier: string;
  /** Hash tying the attempt to the browser session that started it. */
  browser_binding_hash: string;
  /** The URL-mode elicitation waiting on this attempt, if any. */
  elicitation_id: string | null;
  /** Epoch milliseconds; an expired attempt is refused. */
  expires_at: EpochColumn;
}

/** One audit record (src/store/auditStore.ts): never arguments, results, tokens or secrets. */
export interface AuditEventsTable {
  id: string;
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  kind: string;
  request_id: string | null;
  /** Null only for a failed sign-in of an unknown account. */
  sub: string | null;
  client_id: string | null;
  client_name: string | null;
  tool: string | null;
  /** Space-separated scopes the token carried. */
  scopes: string | null;
  outcome: string;
  duration_ms: ColumnType<number | string | null, number | null, number | null>;
  transport: string | null;
  detail: string | null;
}

/** IDENTITY=kratos: the Kratos identities that signed in here (what the identity sweep checks). */
export interface KratosSubjectsTable {
  sub: string;
  first_seen_at: string;
  last_seen_at: string;
  /** ISO-8601; set while the identity is deactivated in Kratos (its tokens are refused). */
  suspended_at: ColumnType<string | null, string | null | undefined, string | null>;
  /** ISO-8601; when Hydra's consents and both services' sessions were ended for the current suspension. */
  revoked_at: ColumnType<string | null, string | null | undefined, string | null>;
  /** ISO-8601; the last reactivation: tokens issued before it stay refused for the retention period. */
  reactivated_at: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Ids used once (src/store/singleUseIds.ts): a row means "already used". No personal data: random nonces only. */
export interface SingleUseIdsTable {
  /** Namespaced by purpose, e.g. `request-state:<nonce>`. */
  id: string;
  /** Epoch milliseconds; the sweep deletes the row after it. */
  expires_at: EpochColumn;
}

/** A Hydra client made from a client metadata document (src/auth/cimd/cimdClients.ts). */
export interface CimdMirrorsTable {
  /** The Hydra client id (`cimd-<host>-<hash>`). */
  hydra_id: string;
  /** The client_id URL it mirrors. */
  url: string;
  /** ISO-8601; the last authorization sent to Hydra with it. */
  authorized_at: string;
  /** ISO-8601; the last time Hydra gave it tokens; null: never. */
  token_at: string | null;
}

/**
 * A 2025-era MCP session (Streamable HTTP), shared by every replica
 * (src/store/mcpSessionsStore.ts): what `initialize` negotiated, so any replica
 * can rebuild the session, and who opened it, so only they may use it.
 * A subject table (src/store/subjectData.ts): a removal deletes a person's
 * sessions with the rest of their data, wherever the removal runs.
 */
export interface McpSessionsTable {
  /** The Mcp-Session-Id (a random UUID). */
  id: string;
  /** The token subject that opened it. */
  sub: string;
  /** The OAuth client that opened it. */
  client_id: string;
  /** The revision `initialize` negotiated (2025-03-26 … 2025-11-25). */
  protocol_version: string;
  /** JSON: the client's `capabilities` from `initialize`. */
  client_capabilities: string;
  /** JSON: the client's `clientInfo` from `initialize`. */
  client_info: string;
  /** Epoch milliseconds. */
  created_at: EpochColumn;
  /** Epoch milliseconds; written at most every few seconds per session (src/mcp/sharedSessions.ts). */
  last_seen_at: EpochColumn;
}

/** One message a 2025 session's SSE stream carried (or would have, had the client been connected). */
export interface McpStreamEventsTable {
  session_id: string;
  /** The SDK's stream id: a POST's stream (a random UUID) or `_GET_stream`. */
  stream_id: string;
  /** Order within the stream (from the one process that writes the stream). */
  seq: EpochColumn;
  /** The session owner's token subject (removal deletes by it). */
  sub: string;
  /** JSON: the JSON-RPC message. */
  message: string;
  /** Epoch milliseconds. */
  created_at: EpochColumn;
}
