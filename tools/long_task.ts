import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineTool } from '../src/tools/contract.js';

/**
 * A tool that takes a while: it reports progress after each step and stops
 * as soon as the client cancels (ctx.signal). The pause stands in for real
 * work such as calling a slow API. It keeps the state of its last run in the
 * user's records, which also shows how a tool stores data without a migration.
 */
export default defineTool({
  name: 'long_task',
  title: 'Long task (progress demo)',
  description: 'Works for the given number of seconds, reporting progress every second. Cancel it to stop early.',
  input: { seconds: z.number().int().min(1).max(60).default(5).describe('How long to work') },
  scopes: [],
  annotations: { readOnlyHint: false, idempotentHint: true, openWorldHint: false },
  handler: async ({ seconds }, { progress, signal, store, log }) => {
    const runs = store.records('long_task');
    for (let step = 1; step <= seconds; step++) {
      try {
        await sleep(1000, undefined, { signal });
      } catch {
        // Aborted: the client cancelled or the session ended. Record it and stop.
        await runs.put('last_run', { status: 'cancelled', completed: step - 1, of: seconds });
        log.info('long_task cancelled', { completed: step - 1 });
        throw signal.reason ?? new Error('cancelled');
      }
      await runs.put('last_run', { status: 'running', completed: step, of: seconds });
      await progress(step, seconds, `step ${step} of ${seconds}`);
    }
    await runs.put('last_run', { status: 'completed', completed: seconds, of: seconds });
    return { completed: seconds };
  },
});
