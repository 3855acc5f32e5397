/**
 * Machine clients: `hydra-mcp client add --machine NAME --scopes "a b" | list --machine | remove ID`
 * (or `npm run client -- …`).
 * Exit codes: 0 done, 1 bad input or failure, 2 usage error.
 *
 * A machine client is an agent that calls tools with no person present: it
 * gets tokens with the client-credentials grant (MCP extension
 * io.modelcontextprotocol/oauth-client-credentials, which leaves such clients
 * to be "established out-of-band through administrative channels"; dynamic
 * registration refuses that grant). It is made here at Hydra's admin API with
 * the `metadata` that only an operator can set, which is what the token
 * verifier checks (src/auth/machineClients.ts).
 */
import { parseArgs } from 'node:util';
import { resourcesOf } from '../app/services.js';
import { isMachineClient, MACHINE_METADATA, MACHINE_OWNER } from '../auth/machineClients.js';
import { SUPPORTED_SCOPES } from '../auth/scopes.js';
import { loadConfig } from '../config/config.js';
import { createHydraAdmin, type HydraAdmin, type HydraClient, HydraError } from '../hydra/index.js';
import { openDatabase } from '../store/database.js';
import { removedSubjectsStore } from '../store/removedSubjectsStore.js';
import { deleteSubjectData } from '../store/subjectData.js';
import { type CliCommand, printingFailures } from './command.js';

/** Scopes of the catalogue that mean nothing to a machine: client credentials bring no refresh token. */
const NOT_FOR_MACHINES: ReadonlySet<string> = new Set(['offline_access', 'offline']);
const MACHINE_SCOPES = SUPPORTED_SCOPES.filter((s) => !NOT_FOR_MACHINES.has(s));

const usageText = (prog: string) => `usage: ${prog} <command>
  add --machine NAME [--scopes "SCOPE ..."]
                   create a machine client (client credentials, no person
                   present) allowed the given scopes; prints its client id and
                   secret once
  list --machine   list machine clients (never their secrets)
  remove ID        remove a machine client: refuse its tokens, delete it at
                   Hydra (with its tokens) and delete its data
Scopes: ${MACHINE_SCOPES.join(', ')}`;

class InputError extends Error {}

/** The scopes asked for, each checked against the catalogue (src/auth/scopes.ts). */
function machineScopes(value: string | undefined): string[] {
  const scopes = [...new Set((value ?? '').split(/[\s,]+/).filter(Boolean))];
  for (const s of scopes) {
    if (NOT_FOR_MACHINES.has(s)) throw new InputError(`scope ${s} is not for machine clients: they get no refresh token, they ask /token again`);
    if (!SUPPORTED_SCOPES.includes(s)) {
      throw new InputError(`unknown scope ${JSON.stringify(s)}; known: ${MACHINE_SCOPES.join(', ')} (src/auth/scopes.ts)`);
    }
  }
  return scopes;
}

async function add(hydra: HydraAdmin, name: string, scopes: string[], audience: string[], tokenUrl: URL): Promise<void> {
  if (!name.trim() || name.length > 100) throw new InputError('NAME must be 1 to 100 characters');
  // Hydra generates the secret and returns it in this answer only (its admin GET never does).
  const created = (await hydra.createClient({
    client_name: name,
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes.join(' '),
    // The tokens name this server (RFC 8707 / RFC 9068 aud): /token maps `resource` to it.
    audience,
    metadata: MACHINE_METADATA,
    owner: MACHINE_OWNER,
  })) as HydraClient & { client_secret?: string };
  if (!created.client_secret) throw new Error('Hydra created the client but returned no secret; remove it and try again');
  console.log(`Added machine client ${name}`);
  console.log(`client_id:     ${created.client_id}`);
  console.log(`client_secret: ${created.client_secret}`);
  console.log(`scopes:        ${scopes.join(' ') || '(none: only tools that need no scope)'}`);
  console.log('The secret is shown this once; store it now. Get a token with HTTP Basic authentication:');
  console.log(`  curl -u '${created.client_id}:<secret>' -d grant_type=client_credentials -d resource=${audience[0]} ${scopes.length ? `-d scope='${scopes.join(' ')}' ` : ''}${tokenUrl.href}`);
}

async function list(hydra: HydraAdmin): Promise<void> {
  const machines = (await hydra.listClientsByOwner(MACHINE_OWNER)).filter(isMachineClient);
  for (const c of machines) console.log(`${c.client_id}\t${c.client_name ?? ''}\t${c.scope || '-'}\t${c.created_at ?? ''}`);
  console.log(`${machines.length} machine client${machines.length === 1 ? '' : 's'}`);
}

/**
 * Remove a machine client, each step safe to run again: record its id as a
 * removed subject first (every server refuses its tokens, JWTs included,
 * within seconds: src/account/removedSubjects.ts), delete it at Hydra (Hydra
 * deletes its tokens), delete every row keyed by its id, mark it complete.
 * The person-account removal (src/account/accountRemoval.ts) does not fit: a
 * machine has no account row, consents or login sessions.
 */
async function remove(hydra: HydraAdmin, id: string, config: ReturnType<typeof loadConfig>): Promise<void> {
  const client = await hydra.getClient(id);
  if (client && !isMachineClient(client)) throw new InputError(`client ${id} is not a machine client; this command removes only machine clients`);
  const db = await openDatabase(config.database);
  try {
    const removed = removedSubjectsStore(db);
    const earlier = await removed.find(id);
    if (!client && !earlier) throw new InputError(`no machine client with id ${id}`);
    if (!client && earlier?.completedAt) {
      console.log(`Nothing left of machine client ${id}: already removed`);
      return;
    }
    // No email: a machine's removal is found again by its id.
    await removed.record(id, '', new Date());
    if (client) await hydra.deleteClient(id);
    const deleted = await deleteSubjectData(db, id);
    await removed.complete(id, new Date());
    const rows = Object.entries(deleted).map(([table, n]) => `${n} ${table}`).join(', ');
    const what = client?.client_name ? `${client.client_name} (${id})` : id;
    console.log(`Removed machine client ${what}: its tokens are refused; ${client ? 'deleted at Hydra with its tokens; ' : ''}deleted ${rows}`);
  } finally {
    await db.destroy();
  }
}

async function main(argv: string[], prog: string): Promise<number> {
  const USAGE = usageText(prog);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { machine: { type: 'boolean' }, scopes: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  const usage = (why: string) => {
    console.error(`error: ${why}\n${USAGE}`);
    return 2;
  };
  if (command === 'add' || command === 'list') {
    // Only machine clients are made here; people's clients register themselves.
    if (!values.machine) return usage(`${command} needs --machine (people's clients register themselves at /register)`);
    if (command === 'add' && args.length !== 1) return usage('add --machine needs exactly one NAME');
    if (command === 'list' && args.length !== 0) return usage('list takes no arguments');
    if (command === 'list' && values.scopes !== undefined) return usage('--scopes is for add');
  } else if (command === 'remove') {
    if (args.length !== 1) return usage('remove needs exactly one client ID');
    if (values.scopes !== undefined) return usage('--scopes is for add');
  } else {
    return usage(command ? `unknown command ${command}` : 'no command');
  }
  try {
    const scopes = command === 'add' ? machineScopes(values.scopes) : [];
    const config = loadConfig(process.env);
    const hydra = createHydraAdmin({ adminUrl: config.hydra.adminUrl });
    if (command === 'add') await add(hydra, args[0]!, scopes, [...resourcesOf(config).canonical], new URL('/token', config.publicBaseUrl));
    else if (command === 'list') await list(hydra);
    else await remove(hydra, args[0]!, config);
    return 0;
  } catch (e) {
    if (e instanceof InputError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    if (e instanceof HydraError) {
      console.error(`error: ${e.unavailable ? 'Hydra is unavailable' : 'Hydra refused'}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

export const clientCommand: CliCommand = {
  name: 'client',
  summary: "machine clients at Hydra's admin API: add, list, remove",
  usage: usageText,
  run: printingFailures(main),
};
