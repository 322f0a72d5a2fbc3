import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only add contention.
    maxWorkers: 2,
    reporters: ['default'],
    // expect.poll waits for something to become true; 1 s (the default) is a fade-out or a commit
    // on a loaded CI machine. Polls still end as soon as their condition holds.
    expect: { poll: { timeout: 15_000 } },
  },
});
