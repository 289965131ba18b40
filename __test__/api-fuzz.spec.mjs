// API fuzz: hostile calls on every public method, getter, static and constructor of LruCache,
// SharedMap and FlowTable (see fixtures/api-fuzz-child.mjs for what is called and what is asserted).
// The calls run in a child process, so a crash (signal, abort) or a hang fails this test with the
// seed and the last call instead of taking the test runner down.
//
//   npm test runs 20,000 calls with a random seed (printed). Longer or reproducible runs:
//   LRUKIT_FUZZ_CALLS=80000 LRUKIT_FUZZ_SEED=123 node --expose-gc node_modules/ava/entrypoints/cli.mjs __test__/api-fuzz.spec.mjs
//   or directly: node --expose-gc __test__/fixtures/api-fuzz-child.mjs <seed> <calls> <progress file>
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { SharedMap } from 'lrukit'

import { test, isBun } from './test.framework.mjs'

const fixture = fileURLToPath(new URL('./fixtures/api-fuzz-child.mjs', import.meta.url))

/** Runs the fuzz child; resolves with its exit code or signal, stdout, stderr, pid and whether it was killed for taking too long. */
function runFuzz(seed, calls, progress, timeout) {
  return new Promise((resolve, reject) => {
    const args = [...(isBun ? [] : ['--expose-gc']), fixture, String(seed), String(calls), progress]
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let hung = false
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err = (err + d).slice(-20_000)))
    const timer = setTimeout(() => {
      hung = true
      p.kill('SIGKILL')
    }, timeout)
    p.on('error', reject)
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal, out, err, pid: p.pid, hung })
    })
  })
}

test('API fuzz: hostile arguments to every method of LruCache, SharedMap and FlowTable throw coded errors, never crash or hang', async (t) => {
  const calls = Number(process.env.LRUKIT_FUZZ_CALLS ?? 20_000)
  const seed = Number(process.env.LRUKIT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
  // 20,000 calls take 1-3 s; the bound is generous for slow CI machines and debug builds
  const timeout = Number(process.env.LRUKIT_FUZZ_TIMEOUT ?? 45_000 + calls)
  const progress = join(tmpdir(), `lrukit-fuzz-${process.pid}-${seed}.txt`)
  t.log(`seed ${seed}, ${calls} calls (reproduce: LRUKIT_FUZZ_SEED=${seed} LRUKIT_FUZZ_CALLS=${calls})`)
  const r = await runFuzz(seed, calls, progress, timeout)
  let last = '(none)'
  try {
    last = readFileSync(progress, 'utf8').trim()
  } catch {
    // the child died before it wrote anything
  }
  rmSync(progress, { force: true })
  // a child that crashed or hung left its segments behind: remove them by its name prefix
  const prefix = `fz${r.pid.toString(36)}`
  for (const name of [0, 1, 2, 3, 4, 5].map((i) => `${prefix}n${i}`).concat([`${prefix}p0`, `${prefix}p1`])) {
    SharedMap.unlink(name)
  }
  if (r.hung) return t.fail(`the fuzz hung (killed after ${timeout} ms); seed ${seed}; last call: ${last}`)
  const lines = r.out.trim().split('\n')
  let report
  try {
    report = JSON.parse(lines.at(-1))
  } catch {
    return t.fail(`the fuzz exited ${r.code} without a report (a crash?); seed ${seed}; last call: ${last}\n${r.err}`)
  }
  t.log(
    `${report.calls} calls in ${report.ms} ms over ${report.targets} targets ${JSON.stringify(report.perClass)}; ` +
      `${report.trapsPassed} trap errors passed through; codes ${JSON.stringify(report.codes)}`,
  )
  t.true(report.targets > 0, 'the fuzz found methods to call')
  for (const cls of ['LruCache', 'SharedMap', 'FlowTable']) t.true(report.perClass[cls] > 3, `${cls} methods were enumerated`)
  for (const name of ['LruCache#get (bound)', 'SharedMap.create', 'SharedMap#stats', 'FlowTable#expire', 'new FlowTable']) {
    t.true(report.targetNames.includes(name), `${name} is among the targets`)
  }
  const shown = report.violations.map((v) => `${v.count}× ${v.violation}\n      e.g. ${v.example}`).join('\n')
  t.deepEqual(report.violations, [], `seed ${seed}: errors that are not lrukit's:\n${shown}`)
  t.is(r.code, 0, `the fuzz exited ${r.code}; seed ${seed}; last call: ${last}\n${r.err}`)
})
