/**
 * User management: `npm run user -- add|list|remove|passwd|export [email]`.
 * Exit codes: 0 done, 1 bad input or failure, 2 usage error.
 * Passwords come from stdin: a prompt without echo on a terminal, else the
 * first line (so scripts can pipe them in). Never from the command line,
 * where they would land in shell history and `ps`.
 */
import 'dotenv/config';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createAccountRemoval, RemovalIncompleteError, type RemovalReport } from '../src/account/accountRemoval.js';
import { createHydraAdmin } from '../src/hydra/index.js';
import { createConnections } from '../src/connections/index.js';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/log/logger.js';
import { createUserStore, normaliseEmail, UserInputError } from '../src/login/userStore.js';
import { openDatabase } from '../src/store/database.js';
import { exportSubjectData } from '../src/store/export.js';
import { removedSubjectsStore } from '../src/store/removedSubjectsStore.js';

const USAGE = `usage: npm run user -- <command>
  add <email>      create a user (password from stdin)
  passwd <email>   set a new password (from stdin)
  remove <email>   remove a person: refuse their tokens, revoke their Hydra
                   consents and sign-ins, delete their data and account
                   (running it again finishes a removal that stopped half-way)
  export <email>   print everything stored for a person as one JSON
                   document (the same as "Download my data" on /account)
  list             list users`;

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

/** How many arguments each command takes after its name. */
const ARITY: Record<string, number> = { add: 1, passwd: 1, remove: 1, export: 1, list: 0 };

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (!command || !Object.hasOwn(ARITY, command) || args.length !== ARITY[command]) {
    console.error(USAGE);
    return 2;
  }
  const email = args[0] ?? '';
  const config = loadConfig(process.env);
  const db = await openDatabase(config.database);
  const users = createUserStore(db);
  try {
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
        // The CLI reports on stdout/stderr itself.
        const log = createLogger('silent');
        const connections = createConnections({ settings: config.connections, db, dialect: config.database.kind, publicBaseUrl: config.publicBaseUrl, secret: config.sessionSecret, log });
        const removeAccount = createAccountRemoval({
          db,
          users,
          hydra: createHydraAdmin({ adminUrl: config.hydra.adminUrl }),
          removed: removedSubjectsStore(db),
          log,
          ...(connections ? { revokeConnections: (sub: string) => connections.flow.revokeAll(sub) } : {}),
        });
        console.log(describeRemoval(normaliseEmail(email), await removeAccount({ email })));
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
    throw e;
  } finally {
    await db.destroy();
  }
}

/** One line saying what a removal did. */
function describeRemoval(email: string, r: RemovalReport): string {
  if (r.outcome === 'nothing-left') return `Nothing left of ${email} (sub ${r.sub}): already removed`;
  const rows = Object.entries(r.deleted)
    // Pending connect attempts are bookkeeping, not data a person would name.
    .filter(([table]) => table !== 'users' && table !== 'connect_states')
    .map(([table, n]) => `${n} ${table}`)
    .join(', ');
  const what = r.outcome === 'removed' ? 'Removed user' : 'Finished removing user';
  return `${what} ${email} (sub ${r.sub}): Hydra consents, tokens and sign-ins revoked; deleted ${rows}${r.deleted.users ? ' and the account' : ''}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // Configuration or database failures: still one readable message, no stack.
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
