import { defineConfig } from 'vitest/config';

// Kept apart from vite.config.ts, whose build settings are chosen per surface and mean nothing to the tests.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
