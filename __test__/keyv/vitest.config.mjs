// vitest runs only the Keyv test suites here (`*.vitest.mjs`): ava runs `__test__/**/*.spec.mjs`
// and `bun test` picks `*.test.*`/`*.spec.*` files, so neither runs these.
// npx vitest run --config __test__/keyv/vitest.config.mjs
import { fileURLToPath } from 'node:url'

import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['*.vitest.mjs'],
    // One process: the files share no map names, but two cores are enough for them in turn.
    fileParallelism: false,
    testTimeout: 30_000,
  },
})
