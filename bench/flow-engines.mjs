// `npm run bench:flow-engines`: FlowTable's two Rust engines at 1M flows (criterion,
// crates/flow-table/benches/flow.rs), against the goal "the integrated (timing-wheel) engine is
// at least 2× the DashMap engine on insert and touch at 1M flows, 1 and 2 threads".
//
// Method: each engine's benchmarks run in their own `cargo bench` process (a criterion filter
// on the engine), the engines alternate within each round (the first one rotates), and each row
// is the median of ROUNDS rounds with its min–max. After each process this script reads
// criterion's estimate (the slope where criterion fits one, else the mean: what criterion prints)
// from $CARGO_TARGET_DIR/criterion/<group>/<engine>/<threads>/new/estimates.json.
//
// Rows: the goal's operations with one call per key (insert_1M: build a 1M-flow table from empty;
// touch_1M: 100k touches of present keys in a 1M-flow table), then the batch calls beside them
// (insert_many_1M, touch_many_1M: 256 keys per call; the dashmap engine has no batch path, so it
// loops over its single-key calls) and insert_steady_1M (1,000 inserts into a table holding 1M
// flows in steady state, 1 thread). Each row says whether the wheel is ≥ 2× the dashmap engine.
//
//   node bench/flow-engines.mjs            3 rounds, writes bench/results/flow-engines.{json,md}
//   node bench/flow-engines.mjs --quick    1 round, short criterion runs, writes nothing
//   node bench/flow-engines.mjs --report   rewrites the .md from the .json (no benchmark run)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 3
const CRITERION = quick ? ['--warm-up-time', '0.5', '--measurement-time', '1'] : ['--warm-up-time', '1', '--measurement-time', '3']
const target = process.env.CARGO_TARGET_DIR ?? `${root}target`
const ENGINES = ['wheel', 'dashmap']
const GOAL = 2

// [group, threads, label, unit count per iteration, part of the goal]
const ROWS = [
  ['insert_1M', '1t', 'insert (1M new flows, from empty), 1 thread', 1_000_000, true],
  ['insert_1M', '2t', 'insert (1M new flows, from empty), 2 threads', 1_000_000, true],
  ['touch_1M', '1t', 'touch (100k present keys in 1M flows), 1 thread', 100_000, true],
  ['touch_1M', '2t', 'touch (100k present keys in 1M flows), 2 threads', 100_000, true],
  ['insert_steady_1M', '1t', 'insert into a steady 1M-flow table (1,000 per tick), 1 thread', 1_000, false],
  ['insert_many_1M', '1t', 'insert_many (256 per call), 1 thread', 1_000_000, false],
  ['insert_many_1M', '2t', 'insert_many (256 per call), 2 threads', 1_000_000, false],
  ['touch_many_1M', '1t', 'touch_many (256 per call), 1 thread', 100_000, false],
  ['touch_many_1M', '2t', 'touch_many (256 per call), 2 threads', 100_000, false],
]
const GROUPS = [...new Set(ROWS.map((r) => r[0]))]

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const f1 = (n) => n.toFixed(1)

function runEngine(engine) {
  const filter = `^(${GROUPS.join('|')})/${engine}/`
  execFileSync('cargo', ['bench', '-p', 'lrukit-flow-table', '--bench', 'flow', '--', ...CRITERION, filter], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const out = {}
  for (const [group, threads, , per] of ROWS) {
    const dir = `${target}/criterion/${group}/${engine}/${threads}/new`
    const est = JSON.parse(readFileSync(`${dir}/estimates.json`, 'utf8'))
    const ns = (est.slope ?? est.mean).point_estimate
    out[`${group}/${threads}`] = ns / per
  }
  return out
}

function report(data) {
  const { rounds, runs } = data
  const lines = [
    `### FlowTable engines at 1M flows (criterion, ${data.rustc}, ${data.date.slice(0, 10)})`,
    '',
    `Goal: the integrated (timing-wheel) engine at least ${GOAL}× the DashMap engine on insert and touch at 1M flows, 1 and 2 threads.`,
    `Each engine's benchmarks in their own \`cargo bench\` process, engines alternating, median of ${rounds} round${rounds > 1 ? 's' : ''} (min–max), ns per operation (wall time / operations; with 2 threads, both threads' operations).`,
    '`u64` keys and values, manual clock. Ratio: dashmap time / wheel time (above 1: the wheel is faster); the ratio\'s range is over the rounds (each round\'s dashmap against the same round\'s wheel).',
    '',
    '| operation | wheel ns/op | dashmap ns/op | ratio | goal ≥ 2× |',
    '|---|---:|---:|---:|---|',
  ]
  let batchHeader = false
  for (const [group, threads, label, , goal] of ROWS) {
    const key = `${group}/${threads}`
    const w = runs.map((r) => r.wheel[key])
    const d = runs.map((r) => r.dashmap[key])
    const ratios = runs.map((r) => r.dashmap[key] / r.wheel[key])
    const ratio = median(d) / median(w)
    const span = (xs) => `${f1(median(xs))} (${f1(Math.min(...xs))}–${f1(Math.max(...xs))})`
    if (!goal && !batchHeader) {
      lines.push('| *beside the goal: batch calls and a steady table* | | | | |')
      batchHeader = true
    }
    const verdict = ratio >= GOAL ? 'met' : '**not met**'
    lines.push(
      `| ${label} | ${span(w)} | ${span(d)} | ${ratio.toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${goal ? verdict : `${verdict} (not the goal's call)`} |`,
    )
  }
  return `${lines.join('\n')}\n`
}

function main() {
  const jsonPath = `${here}results/flow-engines.json`
  let data
  if (process.argv.includes('--report')) {
    if (!existsSync(jsonPath)) throw new Error('no bench/results/flow-engines.json yet')
    data = JSON.parse(readFileSync(jsonPath, 'utf8'))
  } else {
    const rustc = execFileSync('rustc', ['--version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ')
    const runs = []
    for (let r = 0; r < ROUNDS; r++) {
      const run = {}
      for (let i = 0; i < ENGINES.length; i++) {
        const engine = ENGINES[(i + r) % ENGINES.length]
        console.log(`round ${r + 1}: ${engine}`)
        run[engine] = runEngine(engine)
      }
      runs.push(run)
    }
    data = { rustc, date: new Date().toISOString(), rounds: ROUNDS, criterion: CRITERION.join(' '), runs }
  }
  const md = report(data)
  console.log(`\n${md}`)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(jsonPath, `${JSON.stringify(data, null, 2)}\n`)
    writeFileSync(`${here}results/flow-engines.md`, md)
    console.log('wrote bench/results/flow-engines.json and bench/results/flow-engines.md')
  }
}

main()
