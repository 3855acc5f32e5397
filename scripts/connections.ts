/**
 * `npm run connections -- …`: the `hydra-mcp connections` command
 * (src/cli/connections.ts) from a checkout, under tsx, with its usage written
 * for this name.
 */
import 'dotenv/config';
import { exitWhenFlushed } from '../src/cli/command.js';
import { connectionsCommand } from '../src/cli/connections.js';

void connectionsCommand.run(process.argv.slice(2), 'npm run connections --').then(exitWhenFlushed);
