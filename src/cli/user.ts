/**
 * User management: `hydra-mcp user add|list|remove|passwd|export [email]`
 * (or `npm run user -- …`),
 * and `export-to-kratos`. With IDENTITY=kratos the accounts are Kratos
 * identities (its admin API); our database still holds their data.
 * Exit codes: 0 done, 1 bad input or failure, 2 usage error.
 * Passwords come from stdin: a prompt without echo on a terminal, else the
 * first line (so scripts can pipe them in). Never from the command line,
 * where they would land in shell history and `ps`.
 */
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type AccountDirectory, createAccountRemoval, RemovalIncompleteError, type RemovalReport } from '../account/accountRemoval.js';
import { createSealer } from '../connections/sealing.js';
import { createKratos, type KratosAdmin, KratosError } from '../kratos/index.js';
import { exportUsersToKratos, type MoveOutcome } from '../account/migrateUsers.js';
import { findIdentityByEmail, kratosAccountDirectory } from '../account/kratosDirectory.js';
import { createHydraAdmin } from '../hydra/index.js';
import { createConnections } from '../connections/index.js';
import { loadConfig } from '../config/config.js';
import { createLogger } from '../log/logger.js';
import { checkPassword, createUserStore, normaliseEmail, UserInputError } from '../account/userStore.js';
import { openDatabase } from '../store/database.js';
import { exportSubjectData } from '../store/export.js';
import { removedSubjectsStore } from '../store/removedSubjectsStore.js';
import { type CliCommand, printingFailures } from './command.js';

const usage = (prog: string) => `usage: ${prog} <command>
  add <email> [name]
                   create a user (password from stdin; a name only with
                   IDENTITY=kratos, where users are Kratos identities)
  passwd <email>   set a new password (from stdin)
  remove <email>   remove a person: refuse their tokens, revoke their Hydra
                   consents and sign-ins, delete their data and account
                   (running it again finishes a removal that stopped half-way)
  export <email>   print everything stored for a person as one JSON
                   document (the same as "Download my data" on /account)
  list             list users
  export-to-kratos move every built-in user into Kratos (IDENTITY=kratos):
                   same password (its hash is carried over), their data
                   moved to the new identity id; safe to run again`;

async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    throw new UserInputError('no password on stdin');
  }
  const ask = (q: string) =>
    new Promise<string>((resolve) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
      // Echo nothing while typing the password.
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
        if (s.includes(q)) process.stdout.write(q);
      };
      rl.question(q, (answer) => {
        rl.close();
        process.stdout.write('\n');
        resolve(answer);
      });
    });
  const first = await ask(prompt);
  const again = await ask('Repeat password: ');
  if (first !== again) throw new UserInputError('the passwords do not match');
  return first;
}

/** How many arguments each command takes after its name: [fewest, most]. */
const ARITY: Record<string, [number, number]> = { add: [1, 2], passwd: [1, 1], remove: [1, 1], export: [1, 1], list: [0, 0], 'export-to-kratos': [0, 0] };

async function main(argv: string[], prog: string): Promise<number> {
  const USAGE = usage(prog);
  const [command, ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (!command || !Object.hasOwn(ARITY, command) || args.length < ARITY[command]![0] || args.length > ARITY[command]![1]) {
    console.error(USAGE);
    return 2;
  }
  const email = args[0] ?? '';
  const config = loadConfig(process.env);
  const kratosMode = config.identity.kind === 'kratos';
  // Built-in users have no name: a second argument is a usage error there, as it always was.
  if (!kratosMode && args.length > 1) {
    console.error(USAGE);
    return 2;
  }
  if (command === 'export-to-kratos' && config.identity.kind !== 'kratos') {
    console.error('error: export-to-kratos needs IDENTITY=kratos with KRATOS_PUBLIC_URL and KRATOS_ADMIN_URL (where the users go)');
    return 1;
  }
  const db = await openDatabase(config.database);
  const users = createUserStore(db);
  const kratos =
    config.identity.kind === 'kratos' ? createKratos({ publicUrl: config.identity.publicUrl, adminUrl: config.identity.adminUrl }).admin : undefined;
  try {
    if (kratos) {
      await kratosCommand(command, args, { config, db, kratos });
      return 0;
    }
    switch (command) {
      case 'add': {
        const user = await users.add(email, await readPassword('Password: '));
        console.log(`Added user ${user.email} (sub ${user.id})`);
        break;
      }
      case 'passwd': {
        const changed = await users.setPassword(email, await readPassword('New password: '));
        if (!changed) throw new UserInputError(`no user with email ${normaliseEmail(email)}`);
        console.log(`Password changed for ${normaliseEmail(email)}`);
        break;
      }
      case 'remove': {
        console.log(describeRemoval(normaliseEmail(email), await accountRemoval(config, db, users)({ email })));
        break;
      }
      case 'export': {
        const user = await users.findByEmail(email);
        if (!user) throw new UserInputError(`no user with email ${normaliseEmail(email)}`);
        // Page by page to stdout, never the whole document in memory; stdout stays open.
        await pipeline(Readable.from(exportSubjectData(db, user.id)), process.stdout, { end: false });
        break;
      }
      case 'list': {
        const all = await users.list();
        for (const u of all) console.log(`${u.email}\t${u.id}\t${u.createdAt}`);
        console.log(`${all.length} user${all.length === 1 ? '' : 's'} in the ${config.database.kind} database`);
        break;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof UserInputError || e instanceof RemovalIncompleteError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    // Kratos's own words (a 400 names what it refused); unreachable says so.
    if (e instanceof KratosError) {
      console.error(`error: ${e.unavailable && e.status === 0 ? `Kratos's admin API is not reachable (${e.description})` : e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await db.destroy();
  }
}

type Config = ReturnType<typeof loadConfig>;

/** The one removal path (src/account/accountRemoval.ts), with accounts found and deleted in `accounts`. */
function accountRemoval(config: Config, db: Awaited<ReturnType<typeof openDatabase>>, accounts: AccountDirectory) {
  // The CLI reports on stdout/stderr itself.
  const log = createLogger('silent');
  const connections = createConnections({ settings: config.connections, db, dialect: config.database.kind, publicBaseUrl: config.publicBaseUrl, secret: config.sessionSecret, log });
  return createAccountRemoval({
    db,
    users: accounts,
    hydra: createHydraAdmin({ adminUrl: config.hydra.adminUrl }),
    removed: removedSubjectsStore(db),
    log,
    ...(connections ? { revokeConnections: (sub: string) => connections.flow.revokeAll(sub) } : {}),
  });
}

/** The commands with IDENTITY=kratos: accounts in Kratos (admin API), data in our database. */
async function kratosCommand(
  command: string,
  args: string[],
  { config, db, kratos }: { config: Config; db: Awaited<ReturnType<typeof openDatabase>>; kratos: KratosAdmin },
): Promise<void> {
  const email = args[0] ?? '';
  const noSuch = () => new UserInputError(`no user with email ${normaliseEmail(email)} in Kratos`);
  switch (command) {
    case 'add': {
      const normal = normaliseEmail(email);
      const name = args[1]?.trim();
      // Kratos's admin import skips its password policy: ours applies here, as for built-in users.
      const password = checkPassword(await readPassword('Password: '));
      try {
        const created = await kratos.createIdentity({
          traits: { email: normal, ...(name ? { name } : {}) },
          credentials: { password: { config: { password } } },
        });
        console.log(`Added user ${normal} (sub ${created.id}) in Kratos`);
      } catch (e) {
        if (e instanceof KratosError && e.status === 409) throw new UserInputError(`a user with email ${normal} already exists in Kratos`);
        throw e;
      }
      break;
    }
    case 'passwd': {
      const found = await findIdentityByEmail(kratos, email);
      if (!found) throw noSuch();
      const password = checkPassword(await readPassword('New password: '));
      // PUT replaces the identity: send back what it has, with the new password.
      const current = (await kratos.getIdentity(found.id)) ?? found;
      const updated = await kratos.updateIdentity(found.id, {
        schema_id: current.schema_id,
        traits: current.traits,
        state: current.state ?? 'active',
        metadata_public: current.metadata_public ?? null,
        metadata_admin: current.metadata_admin ?? null,
        credentials: { password: { config: { password } } },
      });
      if (!updated) throw noSuch();
      console.log(`Password changed for ${normaliseEmail(email)} in Kratos`);
      break;
    }
    case 'remove': {
      const report = await accountRemoval(config, db, kratosAccountDirectory(kratos))({ email });
      console.log(describeRemoval(normaliseEmail(email), report).replace(' and the account', ' and the Kratos identity'));
      break;
    }
    case 'export': {
      const found = await findIdentityByEmail(kratos, email);
      if (!found) throw noSuch();
      await pipeline(Readable.from(exportSubjectData(db, found.id)), process.stdout, { end: false });
      break;
    }
    case 'list': {
      let count = 0;
      let pageToken: string | undefined;
      do {
        const page = await kratos.listIdentities(pageToken ? { pageToken } : {});
        for (const i of page.identities) {
          const name = typeof i.traits.name === 'string' ? `\t${i.traits.name}` : '';
          console.log(`${i.traits.email ?? ''}\t${i.id}\t${i.created_at ?? ''}${name}`);
          count++;
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
      console.log(`${count} user${count === 1 ? '' : 's'} in Kratos`);
      break;
    }
    case 'export-to-kratos': {
      const outcomes = await exportUsersToKratos({
        db,
        kratos,
        hydra: createHydraAdmin({ adminUrl: config.hydra.adminUrl }),
        removed: removedSubjectsStore(db),
        ...(config.connections ? { sealer: createSealer(config.connections.keys) } : {}),
        onOutcome: (o) => (o.status === 'failed' ? console.error : console.log)(describeMove(o)),
      });
      console.log(summariseMoves(outcomes));
      if (outcomes.some((o) => o.status === 'failed')) throw new UserInputError('some users were not moved (see above); run export-to-kratos again once fixed');
      break;
    }
  }
}

/** Pending connect attempts, the Kratos sign-in record, open MCP sessions and their streams' recent messages: bookkeeping, not data a person would name. */
const BOOKKEEPING = new Set(['connect_states', 'kratos_subjects', 'mcp_sessions', 'mcp_stream_events']);

/** One line per person of export-to-kratos. */
function describeMove(o: MoveOutcome): string {
  switch (o.status) {
    case 'moved': {
      const rows = Object.entries(o.rows)
        .filter(([table]) => !BOOKKEEPING.has(table))
        .map(([table, n]) => `${n} ${table}`)
        .join(', ');
      return `Moved ${o.email}: sub ${o.oldSub} -> Kratos identity ${o.newId}${o.resumed ? ' (finishing an earlier run)' : ''}; ${rows}; Hydra consents of the old sub revoked`;
    }
    case 'skipped':
      return `Skipped ${o.email} (sub ${o.oldSub}): ${o.reason}`;
    case 'failed':
      return `error: ${o.email} (sub ${o.oldSub}) not moved: ${o.error}`;
  }
}

function summariseMoves(outcomes: MoveOutcome[]): string {
  if (outcomes.length === 0) return 'Nothing to move: no built-in users left in the database (everyone is in Kratos already)';
  const n = (s: MoveOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  return `${n('moved')} moved, ${n('skipped')} skipped, ${n('failed')} failed (of ${outcomes.length} built-in user${outcomes.length === 1 ? '' : 's'})`;
}

/** One line saying what a removal did. */
function describeRemoval(email: string, r: RemovalReport): string {
  if (r.outcome === 'nothing-left') return `Nothing left of ${email} (sub ${r.sub}): already removed`;
  const rows = Object.entries(r.deleted)
    .filter(([table]) => table !== 'users' && !BOOKKEEPING.has(table))
    .map(([table, n]) => `${n} ${table}`)
    .join(', ');
  const what = r.outcome === 'removed' ? 'Removed user' : 'Finished removing user';
  return `${what} ${email} (sub ${r.sub}): Hydra consents, tokens and sign-ins revoked; deleted ${rows}${r.deleted.users ? ' and the account' : ''}`;
}

export const userCommand: CliCommand = {
  name: 'user',
  summary: 'people: add, list, remove, passwd, export (and export-to-kratos)',
  usage,
  run: printingFailures(main),
};
