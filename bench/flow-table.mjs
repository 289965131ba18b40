// `npm run bench` (third part): FlowTable beside @isaacs/ttlcache and lru-cache with `ttl`,
// on one idle-timeout workload, one run.
//
//   packets: keys drawn from zipf(s=0.99) over 1M flows ('flow:<i>'); per packet
//     "get and refresh the idle timer, else create the flow": FlowTable getAndTouch/set,
//     ttlcache get (updateAgeOnGet) / set, lru-cache get (updateAgeOnGet) / set
//   idle timeout 100 ms on the real clock, so cold flows expire continuously
//   reaping: every 1,000 packets each cache runs its own bounded reaper the way it is
//     meant to be used: FlowTable purge({ max: 1000 }) (and, in extra rows, expire({ max:
//     1000 }), which also returns each reaped flow as an object); ttlcache purgeStale() (expiry
//     buckets, only what is due); lru-cache has no incremental reaper (purgeStale() scans
//     everything), so its rows are "lazy" (stale entries go on access or by LRU order) and
//     "ttlAutopurge" (one setTimeout per entry)
//   + a native noop() row: the cost of crossing into native at all
//
//   expire cost: one expire({ max: 1000 }) at 10k and at 1M flows (steady state, manual
//     clock: each tick 1,000 flows arrive and the 1,000 from one timeout ago are due)
//   memory per flow: heap and RSS growth for 1M flows, each table in its own child process
//
// Results: bench/results/flow-table.{json,md}. Ratios matter; the machine is noisy.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { Bench } from 'tinybench'
import { LRUCache } from 'lru-cache'
import { TTLCache } from '@isaacs/ttlcache'

import { buildIfNeeded } from '../scripts/build-if-needed.mjs'
import { zipfStream } from './workload.mjs'

const require = createRequire(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')

const UNIVERSE = 1_000_000
const TIMEOUT = 100
const STREAM = 1 << 20
const OPS_PER_CALL = 1000
const BASE = '@isaacs/ttlcache'

// Each implementation: touch(k) → value or undefined; create(k); reap() every 1,000 packets.
const flowTable = (engine, reap) => () => {
  const t = new (require('lrukit').FlowTable)({ timeout: TIMEOUT, engine })
  return { touch: (k) => t.getAndTouch(k), create: (k) => t.set(k, 1), reap: () => t[reap]({ max: 1000 }), size: () => t.size }
}
// The same packets in batches of 250: one touchMany call, then one setMany for the flows it did not find.
const flowTableBatched = (engine) => () => {
  const t = new (require('lrukit').FlowTable)({ timeout: TIMEOUT, engine })
  return {
    batch: (keys) => {
      const mask = t.touchMany(keys)
      const fresh = []
      for (let j = 0; j < keys.length; j++) if (mask[j] === 0) fresh.push([keys[j], 1])
      t.setMany(fresh)
    },
    reap: () => t.purge({ max: 1000 }),
    size: () => t.size,
  }
}
const IMPLS = {
  'FlowTable (wheel, purge)': flowTable('wheel', 'purge'),
  'FlowTable (wheel, touchMany + setMany ×250, purge)': flowTableBatched('wheel'),
  'FlowTable (dashmap, touchMany + setMany ×250, purge)': flowTableBatched('dashmap'),
  'FlowTable (dashmap, purge)': flowTable('dashmap', 'purge'),
  'FlowTable (wheel, expire → entries)': flowTable('wheel', 'expire'),
  'FlowTable (dashmap, expire → entries)': flowTable('dashmap', 'expire'),
  [BASE]: () => {
    const c = new TTLCache({ ttl: TIMEOUT, updateAgeOnGet: true, checkAgeOnGet: true })
    return { touch: (k) => c.get(k), create: (k) => c.set(k, 1), reap: () => c.purgeStale(), size: () => c.size }
  },
  'lru-cache (ttl, lazy)': () => {
    const c = new LRUCache({ max: UNIVERSE, ttl: TIMEOUT, updateAgeOnGet: true })
    return { touch: (k) => c.get(k), create: (k) => c.set(k, 1), reap: () => {}, size: () => c.size }
  },
  'lru-cache (ttl, ttlAutopurge)': () => {
    const c = new LRUCache({ max: UNIVERSE, ttl: TIMEOUT, updateAgeOnGet: true, ttlAutopurge: true })
    return { touch: (k) => c.get(k), create: (k) => c.set(k, 1), reap: () => {}, size: () => c.size }
  },
}

async function throughput() {
  const keys = Array.from({ length: UNIVERSE }, (_, i) => 'flow:' + i)
  const idx = zipfStream(UNIVERSE, 0.99, STREAM, 7)
  const stream = idx.map((i) => keys[i])
  const bench = new Bench({ time: quick ? 300 : 2000, warmupTime: quick ? 100 : 500 })
  const sizes = {}
  for (const [name, make] of Object.entries(IMPLS)) {
    const impl = make()
    let i = 0
    bench.add(name, () => {
      if (impl.batch) {
        for (let n = 0; n < OPS_PER_CALL; n += 250) {
          const keys = [] // 4 batches of 250 packets per 1,000
          for (let j = 0; j < 250; j++) {
            keys.push(stream[i])
            i = (i + 1) & (STREAM - 1)
          }
          impl.batch(keys)
        }
      } else {
        for (let n = 0; n < OPS_PER_CALL; n++) {
          const k = stream[i]
          i = (i + 1) & (STREAM - 1)
          if (impl.touch(k) === undefined) impl.create(k)
        }
      }
      impl.reap()
      sizes[name] = impl.size()
    })
  }
  const { noop } = require('../native.js') // the benchmark probe, not part of the API
  bench.add('native noop()', () => {
    for (let n = 0; n < OPS_PER_CALL; n++) noop()
  })
  await bench.run()
  return bench.tasks.map((t) => {
    const nsPerOp = (t.result.latency.mean * 1e6) / OPS_PER_CALL
    return { name: t.name, opsPerSec: 1e9 / nsPerOp, nsPerOp, rme: t.result.latency.rme, size: sizes[t.name] }
  })
}

function expireCost() {
  const { FlowTable } = require('lrukit')
  const rows = []
  for (const flows of [10_000, 1_000_000]) {
    for (const [engine, method] of [['wheel', 'expire'], ['dashmap', 'expire'], ['wheel', 'purge'], ['dashmap', 'purge']]) {
      const ticks = flows / 1000 // timeout in ms = ticks: 1,000 flows per ms of clock
      const t = new FlowTable({ timeout: ticks, engine, clock: 'manual' })
      let next = 0
      const arrive = () => {
        for (let n = 0; n < 1000; n++) t.set(next++, n)
      }
      for (let k = 0; k < ticks; k++) {
        arrive()
        t.advanceTime(1)
      }
      const samples = []
      const rounds = quick ? 100 : 400
      for (let r = 0; r < rounds; r++) {
        arrive()
        t.advanceTime(1)
        const t0 = process.hrtime.bigint()
        const out = t[method]({ max: 1000 })
        samples.push(Number(process.hrtime.bigint() - t0) / 1000)
        const n = typeof out === 'number' ? out : out.length
        if (n !== 1000) throw new Error(`expected 1000 due flows, got ${n}`)
      }
      samples.sort((a, b) => a - b)
      rows.push({ engine, method, flows, size: t.size, p50us: samples[samples.length >> 1], meanUs: samples.reduce((a, b) => a + b, 0) / samples.length })
    }
  }
  return rows
}

// ---------------------------------------------------------------- memory per flow
const MEMORY_IMPLS = {
  'FlowTable (wheel)': () => new (require('lrukit').FlowTable)({ timeout: 3_600_000, engine: 'wheel' }),
  'FlowTable (dashmap)': () => new (require('lrukit').FlowTable)({ timeout: 3_600_000, engine: 'dashmap' }),
  [BASE]: () => new TTLCache({ ttl: 3_600_000, updateAgeOnGet: true }),
  'lru-cache (ttl, lazy)': () => new LRUCache({ max: UNIVERSE, ttl: 3_600_000, updateAgeOnGet: true }),
}

function memoryChild(name) {
  const keys = Array.from({ length: UNIVERSE }, (_, i) => 'flow:' + i) // part of the baseline
  const settle = () => {
    for (let i = 0; i < 3; i++) globalThis.gc()
    const m = process.memoryUsage()
    return { heap: m.heapUsed, rss: m.rss }
  }
  settle()
  const before = settle()
  const table = MEMORY_IMPLS[name]() // construction counts: lru-cache preallocates for max
  for (const k of keys) table.set(k, 1)
  const after = settle()
  // `keys` must stay alive through the measurement (it is part of the baseline).
  if (table.size !== UNIVERSE || keys.length !== UNIVERSE) throw new Error(`${name}: size ${table.size}`)
  console.log(JSON.stringify({ heap: (after.heap - before.heap) / UNIVERSE, rss: (after.rss - before.rss) / UNIVERSE }))
}

function memory() {
  return Object.keys(MEMORY_IMPLS).map((name) => {
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--memory-child', name], {
      encoding: 'utf8',
    })
    return { name, ...JSON.parse(out.trim().split('\n').pop()) }
  })
}

// ---------------------------------------------------------------- report
function throughputTable(rows) {
  const base = rows.find((r) => r.name === BASE)
  const lines = [
    `#### Idle-timeout workload: zipf 0.99 over 1M flows, timeout ${TIMEOUT} ms, get-and-touch else create, reaper every 1,000 packets`,
    '',
    'lru-cache keeps stale flows until they are looked up or pushed out by `max` (see "flows held");',
    'its ttlAutopurge timers (one per entry) cannot fire inside the synchronous timed loop, so that row',
    'measures the cost of arming them.',
    '',
    '| implementation | packets/s | ns/packet | ± | flows held at the end | vs ttlcache |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.nsPerOp.toFixed(1)} | ${r.rme.toFixed(1)}% | ${
        r.size === undefined ? '' : r.size.toLocaleString('en-US')
      } | ${(r.opsPerSec / base.opsPerSec).toFixed(2)}× |`,
    )
  }
  return lines.join('\n')
}

function expireTable(rows) {
  const lines = [
    '#### One `expire({ max: 1000 })` / `purge({ max: 1000 })` call (steady state, 1,000 flows due per call)',
    '',
    '| engine | call | flows | p50 µs | mean µs | 1M vs 10k (p50) |',
    '|---|---|---:|---:|---:|---:|',
  ]
  for (const r of rows) {
    const small = rows.find((x) => x.engine === r.engine && x.method === r.method && x.flows === 10_000)
    lines.push(
      `| ${r.engine} | ${r.method} | ${r.flows.toLocaleString('en-US')} | ${r.p50us.toFixed(1)} | ${r.meanUs.toFixed(1)} | ${
        r.flows === 10_000 ? '' : (r.p50us / small.p50us).toFixed(2) + '×'
      } |`,
    )
  }
  return lines.join('\n')
}

function memoryTable(rows) {
  const wheel = rows.find((r) => r.name === 'FlowTable (wheel)')
  const lines = [
    '#### Memory per flow (1M flows, string keys `flow:<i>` already on the heap, number values)',
    '',
    '| implementation | V8 heap bytes/flow | RSS bytes/flow (heap + native) | RSS vs wheel |',
    '|---|---:|---:|---:|',
  ]
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.heap.toFixed(1)} | ${r.rss.toFixed(1)} | ${(r.rss / wheel.rss).toFixed(2)}× |`)
  }
  return lines.join('\n')
}

async function main() {
  if (process.argv[2] === '--memory-child') return memoryChild(process.argv[3])
  buildIfNeeded()
  const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`
  console.log(`lrukit FlowTable benchmark on ${runtime}${quick ? ' (quick)' : ''}\n`)
  const rows = await throughput()
  console.log(throughputTable(rows) + '\n')
  const exp = expireCost()
  console.log(expireTable(exp) + '\n')
  const mem = memory()
  console.log(memoryTable(mem) + '\n')
  const md = [
    `### FlowTable benchmark (${runtime}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    throughputTable(rows),
    '',
    expireTable(exp),
    '',
    memoryTable(mem),
    '',
  ].join('\n')
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(`${here}results/flow-table.json`, JSON.stringify({ runtime, date: new Date().toISOString(), rows, expire: exp, memory: mem }, null, 2))
    writeFileSync(`${here}results/flow-table.md`, md)
    console.log('wrote bench/results/flow-table.json and bench/results/flow-table.md')
  }
}

await main()
