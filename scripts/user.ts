/**
 * `npm run user -- …`: the `hydra-mcp user` command (src/cli/user.ts) from a
 * checkout, under tsx, with its usage written for this name.
 */
import 'dotenv/config';
import { exitWhenFlushed } from '../src/cli/command.js';
import { userCommand } from '../src/cli/user.js';

void userCommand.run(process.argv.slice(2), 'npm run user --').then(exitWhenFlushed);
