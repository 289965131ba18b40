// The long SIGKILL campaign for SharedMap (`npm run test:kill`). Runs, one after the other:
//   rust/robust  crates/shm-map/tests/crash.rs sigkill_loop with the robust pthread mutex
//   rust/lease   the same with --features lease-lock (the owner-pid lease lock of macOS/Windows)
//   js           __test__/fixtures/kill-loop.mjs with the default addon, writers run by this node
// Each keeps <writers> writer processes alive at once and SIGKILLs them until
// <writers × kills-per-writer> have died, with mixed operations (set, get, delete, add, incr,
// compareAndSet, TTL writes, LRU eviction pressure, an occasional clear); the Rust loops also kill
// writers inside critical sections through the crash hooks. Then prints the figures of each and
// exits non-zero if any loop lost an acknowledged write, returned a wrong result or failed verify.
//   node scripts/kill-loop.mjs [--writers 8] [--kills-per-writer 1000] [--only rust-robust,rust-lease,js]
// `npm test` runs short versions of the same loops (cargo test: 4 writers, 100 deaths; the
// shared-map-kill spec: 4 writers, 20 kills).
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { buildIfNeeded } from './build-if-needed.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: args } = parseArgs({
  options: {
    writers: { type: 'string', default: '8' },
    'kills-per-writer': { type: 'string', default: '1000' },
    only: { type: 'string', default: 'rust-robust,rust-lease,js' },
  },
})
const writers = Number(args.writers)
const kills = writers * Number(args['kills-per-writer'])
const only = new Set(args.only.split(','))
const results = []

/** Builds the crash test binary and copies it away, so a rebuild during the run cannot swap it. */
function crashBinary(features, dir) {
  const r = spawnSync(
    'cargo',
    ['test', '-p', 'lrukit-shm-map', '--test', 'crash', '--no-run', '--message-format=json', ...features],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 },
  )
  if (r.status !== 0) throw new Error(`cargo test --no-run ${features.join(' ')} failed`)
  const exe = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((m) => m.reason === 'compiler-artifact' && m.target?.name === 'crash' && m.executable)?.executable
  if (!exe) throw new Error('no crash test executable in cargo output')
  const copy = join(dir, `crash${features.length ? '-lease' : ''}`)
  copyFileSync(exe, copy)
  return copy
}

function runRust(label, features) {
  const dir = mkdtempSync(join(tmpdir(), 'lrukit-kill-'))
  const exe = crashBinary(features, dir)
  console.log(`\n=== ${label}: ${writers} writers, ${kills} deaths (${exe})`)
  return new Promise((resolve) => {
    const p = spawn(exe, ['--exact', 'sigkill_loop_keeps_every_acknowledged_write', '--nocapture', '--test-threads=1'], {
      cwd: root,
      env: { ...process.env, LRUKIT_WRITERS: String(writers), LRUKIT_KILLS: String(kills) },
      stdio: ['ignore', 'inherit', 'pipe'],
    })
    let figures = null
    let buf = ''
    p.stderr.on('data', (d) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (l.startsWith('KILL-LOOP ')) figures = JSON.parse(l.slice('KILL-LOOP '.length))
        else if (!/^writer \d+ exited: .* pending None/.test(l)) process.stderr.write(l + '\n')
      }
    })
    p.on('close', (code, signal) => {
      rmSync(dir, { recursive: true, force: true })
      const ok = code === 0 && figures !== null
      results.push({ label, ok, ...figures, exit: code ?? signal })
      resolve()
    })
  })
}

async function runJs() {
  buildIfNeeded()
  const { killLoop, describe } = await import('../__test__/fixtures/kill-loop.mjs')
  console.log(`\n=== js: ${writers} writers, ${kills} kills (${process.execPath})`)
  const r = await killLoop({
    writers,
    kills,
    progress: (f) => console.log(`js kill loop: ${f.deaths} / ${kills} deaths after ${f.seconds.toFixed(0)} s`),
  })
  console.log(describe(r))
  for (const p of r.problems) console.log(`  problem: ${p}`)
  const ok = r.lost === 0 && r.wrong === 0 && r.stale === 0 && r.verifyOk && r.kills === kills
  results.push({ label: 'js', ok, ...r, lock: 'robust pthread mutex (addon)' })
}

if (only.has('rust-robust')) await runRust('rust/robust', [])
if (only.has('rust-lease')) await runRust('rust/lease', ['--features', 'lease-lock'])
if (only.has('js')) await runJs()

console.log('\nkill campaign')
console.log(
  ['loop', 'lock', 'writers', 'kills', 'acked writes', 'recoveries', 'repairs', 'lost', 'wrong', 'stale', 'verify', 'seconds', '']
    .join('\t'),
)
for (const r of results) {
  console.log(
    [
      r.label,
      r.lock ?? '?',
      r.writers ?? writers,
      r.kills ?? '?',
      r.acked ?? '?',
      r.recoveries ?? '?',
      r.repairs ?? '?',
      r.lost ?? '?',
      r.wrong ?? '?',
      r.stale ?? '?',
      r.verifyOk ? 'ok' : 'FAILED',
      r.seconds?.toFixed(1) ?? '?',
      r.ok ? 'PASS' : `FAIL (exit ${r.exit ?? '-'})`,
    ].join('\t'),
  )
}
process.exit(results.every((r) => r.ok) ? 0 : 1)
