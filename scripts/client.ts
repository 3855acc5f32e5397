/**
 * `npm run client -- …`: the `hydra-mcp client` command (src/cli/client.ts)
 * from a checkout, under tsx, with its usage written for this name.
 */
import 'dotenv/config';
import { clientCommand } from '../src/cli/client.js';
import { exitWhenFlushed } from '../src/cli/command.js';

void clientCommand.run(process.argv.slice(2), 'npm run client --').then(exitWhenFlushed);
