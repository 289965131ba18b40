// The long SIGKILL test: kills SharedMap writer processes at random moments (default 200 times),
// then checks that the map verifies and that every write a killed process had acknowledged is
// still there. `npm test` runs the same loop with 20 kills.
//   node scripts/kill-loop.mjs [kills]
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { buildIfNeeded } from './build-if-needed.mjs'

buildIfNeeded()
const kills = process.argv[2] ?? '200'
const spec = fileURLToPath(new URL('../__test__/shared-map.spec.mjs', import.meta.url))
const ava = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url))
const p = spawn(process.execPath, [ava, spec, '--match', 'SIGKILLed*', '--timeout', '30m', '--verbose'], {
  stdio: 'inherit',
  env: { ...process.env, LRUKIT_KILLS: kills },
})
p.on('exit', (code) => process.exit(code ?? 1))
