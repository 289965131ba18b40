// `npm test`: every check the project has, in order, stopping at the first failure.
//   Rust: fmt, clippy (workspace, the no_std crate without default features, shm-map with the
//         lease lock), cargo test (workspace, shm-map again with the lease lock)
//   JS:   build the addon if needed, ava on this Node (and on every Node binary listed in
//         LRUKIT_EXTRA_NODES, separated by the path delimiter), tsc over a consumer file and the
//         type tests, the error codes against README, the API reference (TypeDoc),
//         vitest over the Keyv adapters (lrukit/keyv), the same specs under Bun, the packed
//         tarballs checked (attw, publint), installed without Rust and run on every runtime, oxlint.
import { spawnSync } from 'node:child_process'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { existsSync } from 'node:fs'

import { buildIfNeeded, ensureDependencies, requireCargo } from './build-if-needed.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name)

ensureDependencies()
requireCargo('`npm test`')

const steps = [
  ['cargo fmt', 'cargo', ['fmt', '--all', '--', '--check']],
  ['cargo clippy', 'cargo', ['clippy', '--workspace', '--all-targets', '--', '-D', 'warnings']],
  [
    'cargo clippy (no_std)',
    'cargo',
    ['clippy', '-p', 'lrukit-array-lru', '--no-default-features', '--', '-D', 'warnings'],
  ],
  [
    'cargo clippy (shm-map, lease lock)',
    'cargo',
    ['clippy', '-p', 'lrukit-shm-map', '--all-targets', '--features', 'lease-lock', '--', '-D', 'warnings'],
  ],
  ['cargo test', 'cargo', ['test', '--workspace']],
  // The owner-pid lease lock (macOS/Windows) runs here too: every shm-map
  // test, crash points and kill loop included, with the other lock kind.
  ['cargo test (shm-map, lease lock)', 'cargo', ['test', '-p', 'lrukit-shm-map', '--features', 'lease-lock']],
  ['cargo test (no_std)', 'cargo', ['test', '-p', 'lrukit-array-lru', '--no-default-features']],
  ['build addon', null, () => buildIfNeeded()],
  ['ava (node ' + process.version + ')', process.execPath, ['--expose-gc', join(root, 'node_modules/ava/entrypoints/cli.mjs')]],
]
for (const node of (process.env.LRUKIT_EXTRA_NODES ?? '').split(delimiter).filter(Boolean)) {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  steps.push([`ava (node ${version})`, node, ['--expose-gc', join(root, 'node_modules/ava/entrypoints/cli.mjs')]])
}
steps.push(['tsc --noEmit (consumer types)', bin('tsc'), ['-p', '__test__/tsconfig.json', '--noEmit']])
// Type tests: generics, wrong uses that must not compile, CJS and ESM consumers, node16 and bundler resolution.
steps.push(['type tests (node16)', bin('tsc'), ['-p', '__test__/types/tsconfig.node16.json']])
steps.push(['type tests (bundler)', bin('tsc'), ['-p', '__test__/types/tsconfig.bundler.json']])
steps.push(['error codes: index.d.ts and index.js match README Errors', process.execPath, [join(root, 'scripts/error-codes.mjs'), '--check']])
steps.push(['API reference builds without warnings (npm run docs)', bin('typedoc'), []])
// lrukit/keyv against the unmodified @keyv/test-suite, with keyv 5 and keyv 6 (__test__/keyv/*.vitest.mjs).
steps.push([
  'vitest: Keyv test suites (node ' + process.version + ')',
  process.execPath,
  [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--config', '__test__/keyv/vitest.config.mjs'],
])
if (existsSync(bin('bun')) && process.env.LRUKIT_SKIP_BUN !== '1') {
  steps.push(['bun test', bin('bun'), ['test', '--timeout', '60000', '__test__']])
}
// The packed tarballs installed into an empty project with no Rust on PATH, run on Node 20/22/24 and Bun.
steps.push(['package: install the tarballs, smoke on every runtime', process.execPath, [join(root, '__test__/package/install.mjs')]])
steps.push(['oxlint', bin('oxlint'), ['--deny-warnings', '.']])
steps.push(['README and BENCH.md tables match bench/results', process.execPath, [join(root, 'scripts/bench-readme.mjs'), '--check']])

let passed = 0
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}`)
  let ok
  if (cmd === null) {
    try {
      args()
      ok = true
    } catch (e) {
      console.error(e.message)
      ok = false
    }
  } else {
    const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
    ok = r.status === 0
  }
  if (!ok) {
    console.error(`\n✗ ${name} failed`)
    console.log(`steps: ${passed} passed, 1 failed`)
    process.exit(1)
  }
  passed++
}
console.log(`\nsteps: ${passed} passed, 0 failed`)
