/**
 * The audit trail for operators:
 *   hydra-mcp audit [--sub S] [--client C] [--tool T] [--since 24h|7d|30m|ISO-8601] [--limit N] [--json]
 * (or `npm run audit -- …`). Newest first. Exit codes: 0 done (also when nothing matched), 1 failure, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/config.js';
import { type AuditEvent, type AuditFilter, auditStore, MAX_AUDIT_PAGE } from '../store/auditStore.js';
import { openDatabase } from '../store/database.js';
import { type CliCommand, describeFailure } from './command.js';

const usage = (prog: string) => `usage: ${prog} [--sub SUB] [--client CLIENT_ID] [--tool TOOL] [--since WHEN] [--limit N] [--json]
  --sub SUB         records of this subject (a person's sub, or a machine client's id)
  --client ID       records of this OAuth client
  --tool NAME       tool calls of this tool
  --since WHEN      records at or after WHEN: a duration back from now (30m, 24h, 7d)
                    or an ISO-8601 time (2026-01-31, 2026-01-31T12:00:00Z)
  --limit N         at most N records, newest first (1-${MAX_AUDIT_PAGE}; default 100)
  --json            a JSON array instead of one line per record`;

/** A command line that cannot be run: the message and the usage go to stderr, exit 2. */
export class UsageError extends Error {}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: "24h" style (a whole number of minutes, hours or days) or an ISO-8601 date/time. */
export function parseSince(value: string, now: Date): Date {
  const rel = /^(\d{1,5})([mhd])$/.exec(value);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNITS[rel[2]!]!);
  // ISO-8601 only (Date.parse alone also takes "March 7" and the like).
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(value) && !Number.isNaN(Date.parse(value))) return new Date(value);
  throw new UsageError(`--since ${JSON.stringify(value)} is not a duration (30m, 24h, 7d) or an ISO-8601 time`);
}

export interface AuditCommand {
  filter: AuditFilter;
  json: boolean;
}

/** The command line, checked; throws UsageError naming what is wrong. */
export function parseAuditArgs(argv: string[], now = new Date()): AuditCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        sub: { type: 'string' },
        client: { type: 'string' },
        tool: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) throw new UsageError('');
  for (const name of ['sub', 'client', 'tool'] as const) {
    const v = values[name];
    if (v !== undefined && (v.length === 0 || v.length > 255)) throw new UsageError(`--${name} must be 1 to 255 characters`);
  }
  let limit = 100;
  if (values.limit !== undefined) {
    if (!/^\d{1,4}$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > MAX_AUDIT_PAGE) {
      throw new UsageError(`--limit must be a whole number from 1 to ${MAX_AUDIT_PAGE}`);
    }
    limit = Number(values.limit);
  }
  const filter: AuditFilter = { limit };
  if (values.sub !== undefined) filter.sub = values.sub;
  if (values.client !== undefined) filter.clientId = values.client;
  if (values.tool !== undefined) filter.tool = values.tool;
  if (values.since !== undefined) filter.since = parseSince(values.since, now);
  return { filter, json: values.json === true };
}

// Client names come from whoever registered the client: no control characters reach the terminal.
const plain = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** One record as one line of text. */
export function formatLine(e: AuditEvent): string {
  const parts = [e.at, e.kind, e.outcome];
  if (e.sub !== undefined) parts.push(`sub=${e.sub}`);
  if (e.clientId !== undefined) parts.push(`client=${e.clientId}${e.clientName ? ` (${JSON.stringify(e.clientName)})` : ''}`);
  if (e.tool !== undefined) parts.push(`tool=${e.tool}`);
  if (e.scopes) parts.push(`scopes=${JSON.stringify(e.scopes)}`);
  if (e.transport !== undefined) parts.push(`transport=${e.transport}`);
  if (e.durationMs !== undefined) parts.push(`${e.durationMs}ms`);
  if (e.requestId !== undefined) parts.push(`request=${e.requestId}`);
  if (e.detail !== undefined) parts.push(`detail=${JSON.stringify(e.detail)}`);
  return plain(parts.join('  '));
}

async function main(argv: string[], prog: string): Promise<number> {
  let command: AuditCommand;
  try {
    command = parseAuditArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message ? `${e.message}\n` : ''}${usage(prog)}\n`);
    return 2;
  }
  const config = loadConfig(process.env);
  const db = await openDatabase(config.database);
  try {
    const events = await auditStore(db).search(command.filter);
    process.stdout.write(command.json ? `${JSON.stringify(events, null, 2)}\n` : events.map((e) => `${formatLine(e)}\n`).join(''));
    if (!command.json && events.length === 0) process.stderr.write('no matching records\n');
    return 0;
  } finally {
    await db.destroy();
  }
}

export const auditCommand: CliCommand = {
  name: 'audit',
  summary: 'read the audit trail: by person, client, tool, time',
  usage,
  run: (argv, prog) =>
    main(argv, prog).catch((e: unknown) => {
      process.stderr.write(`${describeFailure(e)}\n`);
      return 1;
    }),
};
