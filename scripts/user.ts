/**
 * User management: `npm run user -- add|list|remove|passwd [email]`.
 * Exit codes: 0 done, 1 bad input or failure, 2 usage error.
 * Passwords come from stdin: a prompt without echo on a terminal, else the
 * first line (so scripts can pipe them in). Never from the command line,
 * where they would land in shell history and `ps`.
 */
import 'dotenv/config';
import { createInterface } from 'node:readline';
import { loadConfig } from '../src/config/config.js';
import { createUserStore, normaliseEmail, UserInputError } from '../src/login/userStore.js';
import { openDatabase } from '../src/store/database.js';

const USAGE = `usage: npm run user -- <command>
  add <email>      create a user (password from stdin)
  passwd <email>   set a new password (from stdin)
  remove <email>   delete a user
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
const ARITY: Record<string, number> = { add: 1, passwd: 1, remove: 1, list: 0 };

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
        if (!(await users.remove(email))) throw new UserInputError(`no user with email ${normaliseEmail(email)}`);
        console.log(`Removed user ${normaliseEmail(email)}`);
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
    if (e instanceof UserInputError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // Configuration or database failures: still one readable message, no stack.
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
