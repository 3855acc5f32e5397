import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    // End-to-end suites start a real Hydra (built once, then cached) and walk the OAuth flow.
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // Two cores: run files one at a time so each Hydra gets the machine.
    fileParallelism: false,
    reporters: ['default'],
  },
});
