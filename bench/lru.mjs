// `npm run bench`: LruCache beside the JavaScript LRUs, same workload, one run.
//
//   (a) zipf(s=0.99) over 1M string keys 'flow:<i>', capacity 100k, get-else-set
//   (b) uniform random hits over 1M resident entries (capacity 1M)
//   (c) workload (a) in batches of 1,000 keys: lrukit uses getMany + setMany (two
//       native calls per batch); the JS caches have no batch API and run per key
//   heap: V8 heap growth after inserting 1M entries with primitive values, each
//         cache in its own child process (--expose-gc)
//   plus `noop()` and `echo(key)` rows: the cost of crossing into native at all.
//
// Keys are built before timing (as in bench-lru), so the timed loop is cache work only.
// Results: bench/results/lru.json and bench/results/lru.md. Ratios matter; absolute
// times on a shared 2-core machine are noisy.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { Bench } from 'tinybench'
import { LRUCache } from 'lru-cache'
import { createLRU } from 'lru.min'

import { buildIfNeeded } from '../scripts/build-if-needed.mjs'
import { rng, zipfStream } from './workload.mjs'

const require = createRequire(import.meta.url)
const MnemonistLRU = require('mnemonist/lru-cache')
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')

const UNIVERSE = 1_000_000
const CAPACITY = 100_000
const BATCH = 1_000
const STREAM = 1 << 20 // sampled operations, cycled through

const KEYS = Array.from({ length: UNIVERSE }, (_, i) => 'flow:' + i)

const FACTORIES = {
  lrukit: (capacity) => new (require('lrukit').LruCache)({ capacity }),
  'lru-cache': (capacity) => new LRUCache({ max: capacity }),
  'lru.min': (capacity) => createLRU({ max: capacity }),
  mnemonist: (capacity) => new MnemonistLRU(capacity),
  'Map (FIFO, no LRU)': (capacity) => fifoMap(capacity),
}

function makeCaches(capacity) {
  return Object.fromEntries(Object.entries(FACTORIES).map(([name, make]) => [name, make(capacity)]))
}

function fifoMap(capacity) {
  const m = new Map()
  return {
    get: (k) => m.get(k),
    set(k, v) {
      if (m.size >= capacity && !m.has(k)) m.delete(m.keys().next().value)
      m.set(k, v)
      return this
    },
  }
}

function cycle(stream) {
  let i = 0
  const n = stream.length
  return () => {
    const k = stream[i]
    i = i + 1 === n ? 0 : i + 1
    return k
  }
}

const OPS_PER_CALL = 1000 // each timed call does this many cache operations

async function runBench(title, tasks) {
  const bench = new Bench({ time: quick ? 300 : 1500, warmupTime: quick ? 100 : 300 })
  for (const [name, fn] of tasks) bench.add(name, fn)
  await bench.run()
  const rows = bench.tasks.map((t) => {
    const r = t.result
    const nsPerOp = (r.latency.mean * 1e6) / OPS_PER_CALL
    return { name: t.name, opsPerSec: 1e9 / nsPerOp, nsPerOp, rme: r.latency.rme }
  })
  return { title, rows }
}

async function workloadA() {
  const stream = zipfStream(UNIVERSE, 0.99, STREAM, 42).map((i) => KEYS[i])
  const caches = makeCaches(CAPACITY)
  const tasks = []
  for (const [name, c] of Object.entries(caches)) {
    const next = cycle(stream)
    // warm the cache to steady state before timing
    for (let j = 0; j < 300_000; j++) {
      const k = next()
      if (c.get(k) === undefined) c.set(k, j)
    }
    tasks.push([
      name,
      () => {
        for (let j = 0; j < OPS_PER_CALL; j++) {
          const k = next()
          if (c.get(k) === undefined) c.set(k, j)
        }
      },
    ])
  }
  const { noop, echo } = require('../native.js') // the benchmark probes, not part of the API
  const next = cycle(stream)
  tasks.push(['native noop() (boundary only)', () => {
    for (let j = 0; j < OPS_PER_CALL; j++) noop()
  }])
  tasks.push(['native echo(key) (boundary + 1 arg)', () => {
    for (let j = 0; j < OPS_PER_CALL; j++) echo(next())
  }])
  // hit rate, measured once on a fresh lrukit cache (identical for every true LRU)
  const probe = makeCaches(CAPACITY).lrukit
  let hits = 0
  for (let j = 0; j < stream.length; j++) {
    const k = stream[j]
    if (probe.get(k) === undefined) probe.set(k, j)
    else hits++
  }
  const res = await runBench('(a) zipf 0.99 over 1M keys, capacity 100k, get-else-set', tasks)
  res.note = `hit rate ${(100 * hits / stream.length).toFixed(1)}% (second pass over the stream)`
  return res
}

async function workloadB() {
  const caches = makeCaches(UNIVERSE)
  const rand = rng(7)
  const stream = Array.from({ length: STREAM }, () => KEYS[(rand() * UNIVERSE) | 0])
  const tasks = []
  for (const [name, c] of Object.entries(caches)) {
    if (name.startsWith('Map')) continue
    for (let i = 0; i < UNIVERSE; i++) c.set(KEYS[i], i)
    const next = cycle(stream)
    let sink = 0
    tasks.push([
      name,
      () => {
        for (let j = 0; j < OPS_PER_CALL; j++) sink += c.get(next())
        if (Number.isNaN(sink)) throw new Error('miss in a hit-only workload')
      },
    ])
  }
  const res = await runBench('(b) uniform hits over 1M resident entries', tasks)
  return res
}

async function workloadC() {
  const stream = zipfStream(UNIVERSE, 0.99, STREAM, 42).map((i) => KEYS[i])
  const caches = makeCaches(CAPACITY)
  const tasks = []
  const lrukit = caches.lrukit
  {
    let pos = 0
    const batches = []
    for (let b = 0; b + BATCH <= stream.length; b += BATCH) batches.push(stream.slice(b, b + BATCH))
    const step = () => {
      const keys = batches[pos]
      pos = pos + 1 === batches.length ? 0 : pos + 1
      const vals = lrukit.getMany(keys)
      const missing = []
      for (let j = 0; j < keys.length; j++) if (vals[j] === undefined) missing.push([keys[j], j])
      if (missing.length) lrukit.setMany(missing)
    }
    for (let w = 0; w < 300; w++) step()
    tasks.push(['lrukit getMany/setMany (batches of 1,000)', step])
  }
  for (const [name, c] of Object.entries(caches)) {
    if (name === 'lrukit') continue
    const next = cycle(stream)
    for (let j = 0; j < 300_000; j++) {
      const k = next()
      if (c.get(k) === undefined) c.set(k, j)
    }
    tasks.push([
      `${name} (per key)`,
      () => {
        for (let j = 0; j < BATCH; j++) {
          const k = next()
          if (c.get(k) === undefined) c.set(k, j)
        }
      },
    ])
  }
  return runBench('(c) workload (a) in batches of 1,000 keys', tasks)
}

function heapGrowth() {
  const names = Object.keys(FACTORIES)
  const rows = []
  for (const name of names) {
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--heap-child', name], {
      encoding: 'utf8',
    })
    rows.push({ name, ...JSON.parse(out) })
  }
  return { title: 'V8 heap growth after inserting 1M entries (number values)', rows }
}

async function heapChild(name) {
  const N = 1_000_000
  require('lrukit') // load the addon before measuring
  globalThis.gc()
  globalThis.gc()
  const before = process.memoryUsage()
  const c = FACTORIES[name](N)
  for (let i = 0; i < N; i++) c.set('flow:' + i, i)
  globalThis.gc()
  globalThis.gc()
  const after = process.memoryUsage()
  if (c.get('flow:5') !== 5) throw new Error('cache lost an entry')
  process.stdout.write(
    JSON.stringify({
      heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
      rssMB: (after.rss - before.rss) / 2 ** 20,
    }),
  )
}

function ratioTable(res, base = 'lru-cache') {
  const baseRow = res.rows.find((r) => r.name === base || r.name === `${base} (per key)`)
  const lines = [`#### ${res.title}`, '']
  if (res.note) lines.push(res.note, '')
  lines.push('| implementation | ops/s | ns/op | ± | vs lru-cache |', '|---|---:|---:|---:|---:|')
  for (const r of res.rows) {
    const ratio = baseRow ? (r.opsPerSec / baseRow.opsPerSec).toFixed(2) + '×' : ''
    lines.push(
      `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.nsPerOp.toFixed(1)} | ${r.rme.toFixed(1)}% | ${ratio} |`,
    )
  }
  return lines.join('\n')
}

function heapTable(res) {
  const base = res.rows.find((r) => r.name === 'lru-cache')
  const lines = [`#### ${res.title}`, '', '| implementation | heap growth (MB) | RSS growth (MB) | heap vs lru-cache |', '|---|---:|---:|---:|']
  for (const r of res.rows) {
    lines.push(`| ${r.name} | ${r.heapMB.toFixed(1)} | ${r.rssMB.toFixed(1)} | ${(r.heapMB / base.heapMB).toFixed(3)}× |`)
  }
  return lines.join('\n')
}

async function main() {
  if (process.argv[2] === '--heap-child') return heapChild(process.argv[3])
  buildIfNeeded()
  const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`
  console.log(`lrukit LruCache benchmark on ${runtime}${quick ? ' (quick)' : ''}\n`)
  const results = []
  for (const w of [workloadA, workloadB, workloadC]) {
    const r = await w()
    console.log(ratioTable(r) + '\n')
    results.push(r)
  }
  const heap = heapGrowth()
  console.log(heapTable(heap) + '\n')
  const md = [
    `### LruCache benchmark (${runtime}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    ...results.map((r) => ratioTable(r) + '\n'),
    heapTable(heap),
    '',
  ].join('\n')
  mkdirSync(`${here}results`, { recursive: true })
  if (!quick) {
    writeFileSync(`${here}results/lru.json`, JSON.stringify({ runtime, date: new Date().toISOString(), results, heap }, null, 2))
    writeFileSync(`${here}results/lru.md`, md)
    console.log('wrote bench/results/lru.json and bench/results/lru.md')
  }
}

await main()
