/**
 * `npm run audit -- …`: the `hydra-mcp audit` command (src/cli/audit.ts) from
 * a checkout, under tsx, with its usage written for this name. Its parsing
 * and formatting are exported here too, as before.
 */
import 'dotenv/config';
import { fileURLToPath } from 'node:url';
import { auditCommand } from '../src/cli/audit.js';
import { exitWhenFlushed } from '../src/cli/command.js';

export { type AuditCommand, formatLine, parseAuditArgs, parseSince, UsageError } from '../src/cli/audit.js';

const PROG = 'npm run audit --';
export const USAGE = auditCommand.usage(PROG);

// Run only as a program, not when a test imports the functions above.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  void auditCommand.run(process.argv.slice(2), PROG).then(exitWhenFlushed);
}
