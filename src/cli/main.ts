#!/usr/bin/env node
/**
 * `hydra-mcp`: the operator commands, one program in every deployment (the
 * image links it onto PATH; `npm run user|client|audit|connections -- …` run
 * the same commands from a checkout). Settings come from the environment as
 * for the server (NAME_FILE secrets included), and a .env in the working
 * directory when there is one.
 *   hydra-mcp --help              the commands
 *   hydra-mcp <command> --help    one command's usage
 * Exit codes: 0 done, 1 bad input or failure, 2 usage error (an unknown command too).
 */
import 'dotenv/config';
import { auditCommand } from './audit.js';
import { clientCommand } from './client.js';
import { type CliCommand, exitWhenFlushed } from './command.js';
import { connectionsCommand } from './connections.js';
import { migrateCommand } from './migrate.js';
import { userCommand } from './user.js';

const PROG = 'hydra-mcp';
const COMMANDS: readonly CliCommand[] = [userCommand, clientCommand, auditCommand, connectionsCommand, migrateCommand];
const HELP = new Set(['--help', '-h', 'help']);

const overview = () =>
  [
    `usage: ${PROG} <command> [arguments]`,
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    `Run "${PROG} <command> --help" for a command's usage.`,
  ].join('\n');

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || HELP.has(name)) {
    (name === undefined ? console.error : console.log)(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`error: unknown command ${JSON.stringify(name)}\n${overview()}`);
    return 2;
  }
  const prog = `${PROG} ${command.name}`;
  // One shape of help for every command (a command's own parser may differ on it).
  if (args.length === 1 && HELP.has(args[0]!)) {
    console.log(command.usage(prog));
    return 0;
  }
  return command.run(args, prog);
}

void main(process.argv.slice(2)).then(exitWhenFlushed);
