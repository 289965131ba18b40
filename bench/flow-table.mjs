// `npm run bench:flow-table`: FlowTable beside @isaacs/ttlcache and lru-cache with `ttl`, on one
// idle-timeout workload, measured as a user would compare them.
//
// Method: every (value type, implementation) runs alone in its own fresh process (`--child`), the
// implementations alternate within each round (the first one rotates), and each row is the median
// of ROUNDS rounds with its min–max. Default options as a user writes them for an idle timeout:
// `new FlowTable({ timeout })` (the wheel engine; the dashmap rows add `engine: 'dashmap'`),
// `new TTLCache({ ttl, updateAgeOnGet: true, checkAgeOnGet: true })`,
// `new LRUCache({ max, ttl, updateAgeOnGet: true })` (+ `ttlAutopurge: true` in its second row).
//
//   packets: keys drawn from zipf(s=0.99) over 1M flows ('flow:<i>', built before timing); per
//     packet "get and refresh the idle timer, else create the flow": FlowTable getAndTouch/set,
//     ttlcache get (updateAgeOnGet) / set, lru-cache get (updateAgeOnGet) / set; the batched rows
//     take 250 packets per touchMany call, then one setMany for the flows it did not find
//   idle timeout 100 ms on the real clock, so cold flows expire continuously (a 500 ms warm-up
//     before timing: the table is in steady state when the timed part starts)
//   reaping: every 1,000 packets each cache runs its own bounded reaper the way it is meant to be
//     used: FlowTable purge({ max: 1000 }) (and, in extra rows, expire({ max: 1000 }), which also
//     returns each reaped flow as an object); ttlcache purgeStale() (expiry buckets, only what is
//     due); lru-cache has no incremental reaper (purgeStale() scans everything), so its rows are
//     "lazy" (stale entries go on access or by LRU order) and "ttlAutopurge" (one setTimeout per
//     entry)
//   value types, each its own row (values prebuilt per flow): short strings (~30 bytes), numbers,
//     and objects ({ id, name, tags }). FlowTable stores strings, numbers, bigints, booleans, null
//     and Buffers, not objects: its object rows store JSON.stringify(object) when a flow is created
//     and JSON.parse the value on each hit (the batched rows read no values, so they only
//     stringify), which is what a user storing objects in it does; the JavaScript caches keep the
//     object itself
//   + a native noop() row (once per round): the cost of crossing into native at all
//
//   expire cost: one expire({ max: 1000 }) / purge({ max: 1000 }) at 10k and at 1M flows (steady
//     state, manual clock: each tick 1,000 flows arrive and the 1,000 from one timeout ago are
//     due), each (engine, call, flows) in its own process, every round
//   memory per flow: heap and RSS growth for 1M flows with number values, each table in its own
//     process, once
//
// Results: bench/results/flow-table.{json,md}; `--quick` (1 round, short runs) writes nothing.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { timed as timedFor, valuesOf as valuesFor, zipfStream } from './workload.mjs'

const require = createRequire(import.meta.url)
const script = fileURLToPath(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 3
const SECONDS = quick ? 0.4 : 1.5
const WARM_MS = quick ? 300 : 500

const UNIVERSE = 1_000_000
const TIMEOUT = 100
const STREAM = 1 << 20
const OPS = 1000 // packets per timed step; the reaper runs once per step
const BATCH = 250
const BASE = '@isaacs/ttlcache'
const VALUE_TYPES = ['string', 'number', 'object']

// Each implementation: touch(k) → value or undefined; create(k, v); reap() every 1,000 packets.
// `enc`/`dec` turn a value into what the cache stores and back (JSON for objects in FlowTable).
const flowTable = (engine, reap) => (enc, dec) => {
  const { FlowTable } = require('lrukit')
  const t = engine === 'wheel' ? new FlowTable({ timeout: TIMEOUT }) : new FlowTable({ timeout: TIMEOUT, engine })
  return {
    touch: dec ? (k) => {
      const v = t.getAndTouch(k)
      return v === undefined ? undefined : dec(v)
    } : (k) => t.getAndTouch(k),
    create: enc ? (k, v) => t.set(k, enc(v)) : (k, v) => t.set(k, v),
    reap: () => t[reap]({ max: 1000 }),
    size: () => t.size,
  }
}
// The same packets in batches of 250: one touchMany call, then one setMany for the flows it did not find.
const flowTableBatched = (engine) => (enc) => {
  const { FlowTable } = require('lrukit')
  const t = engine === 'wheel' ? new FlowTable({ timeout: TIMEOUT }) : new FlowTable({ timeout: TIMEOUT, engine })
  return {
    batch: (keys, vals) => {
      const mask = t.touchMany(keys)
      const fresh = []
      for (let j = 0; j < keys.length; j++) if (mask[j] === 0) fresh.push([keys[j], enc ? enc(vals[j]) : vals[j]])
      t.setMany(fresh)
    },
    reap: () => t.purge({ max: 1000 }),
    size: () => t.size,
  }
}
const IMPLS = {
  'FlowTable (wheel, purge)': flowTable('wheel', 'purge'),
  'FlowTable (dashmap, purge)': flowTable('dashmap', 'purge'),
  'FlowTable (wheel, touchMany + setMany ×250, purge)': flowTableBatched('wheel'),
  'FlowTable (dashmap, touchMany + setMany ×250, purge)': flowTableBatched('dashmap'),
  'FlowTable (wheel, expire → entries)': flowTable('wheel', 'expire'),
  'FlowTable (dashmap, expire → entries)': flowTable('dashmap', 'expire'),
  [BASE]: () => {
    const { TTLCache } = require('@isaacs/ttlcache')
    const c = new TTLCache({ ttl: TIMEOUT, updateAgeOnGet: true, checkAgeOnGet: true })
    return { touch: (k) => c.get(k), create: (k, v) => c.set(k, v), reap: () => c.purgeStale(), size: () => c.size }
  },
  'lru-cache (ttl, lazy)': () => {
    const { LRUCache } = require('lru-cache')
    const c = new LRUCache({ max: UNIVERSE, ttl: TIMEOUT, updateAgeOnGet: true })
    return { touch: (k) => c.get(k), create: (k, v) => c.set(k, v), reap: () => {}, size: () => c.size }
  },
  'lru-cache (ttl, ttlAutopurge)': () => {
    const { LRUCache } = require('lru-cache')
    const c = new LRUCache({ max: UNIVERSE, ttl: TIMEOUT, updateAgeOnGet: true, ttlAutopurge: true })
    return { touch: (k) => c.get(k), create: (k, v) => c.set(k, v), reap: () => {}, size: () => c.size }
  },
}
const NAMES = Object.keys(IMPLS)
const isFlowTable = (name) => name.startsWith('FlowTable')

const valuesOf = (type) => valuesFor(type, UNIVERSE)
const timed = (step, ops) => timedFor(step, ops, { seconds: SECONDS, warmMs: WARM_MS })

// ------------------------------------------------------------------ child side
function child(type, name) {
  const keys = Array.from({ length: UNIVERSE }, (_, i) => 'flow:' + i)
  const idx = zipfStream(UNIVERSE, 0.99, STREAM, 7)
  const stream = idx.map((i) => keys[i])
  let p = 0
  if (name === 'noop') {
    const { noop } = require('../native.js') // the benchmark probe, not part of the API
    const opsPerSec = timed(() => {
      for (let n = 0; n < OPS; n++) noop()
    }, OPS)
    process.stdout.write(JSON.stringify({ opsPerSec, size: null }))
    return
  }
  const values = valuesOf(type)
  const json = type === 'object' && isFlowTable(name)
  const impl = IMPLS[name](json ? JSON.stringify : null, json ? JSON.parse : null)
  let step
  if (impl.batch) {
    const bk = Array.from({ length: BATCH })
    const bv = Array.from({ length: BATCH })
    step = () => {
      for (let n = 0; n < OPS; n += BATCH) {
        for (let j = 0; j < BATCH; j++) {
          const id = idx[p]
          bk[j] = stream[p]
          bv[j] = values[id]
          p = (p + 1) & (STREAM - 1)
        }
        impl.batch(bk, bv)
      }
      impl.reap()
    }
  } else {
    step = () => {
      for (let n = 0; n < OPS; n++) {
        const k = stream[p]
        if (impl.touch(k) === undefined) impl.create(k, values[idx[p]])
        p = (p + 1) & (STREAM - 1)
      }
      impl.reap()
    }
  }
  const opsPerSec = timed(step, OPS)
  process.stdout.write(JSON.stringify({ opsPerSec, size: impl.size() }))
}

function expireChild(engine, method, flows) {
  const { FlowTable } = require('lrukit')
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
  process.stdout.write(JSON.stringify({ size: t.size, p50us: samples[samples.length >> 1], meanUs: samples.reduce((a, b) => a + b, 0) / samples.length }))
}

// ---------------------------------------------------------------- memory per flow
const MEMORY_IMPLS = {
  'FlowTable (wheel)': () => new (require('lrukit').FlowTable)({ timeout: 3_600_000 }),
  'FlowTable (dashmap)': () => new (require('lrukit').FlowTable)({ timeout: 3_600_000, engine: 'dashmap' }),
  [BASE]: () => new (require('@isaacs/ttlcache').TTLCache)({ ttl: 3_600_000, updateAgeOnGet: true }),
  'lru-cache (ttl, lazy)': () => new (require('lru-cache').LRUCache)({ max: UNIVERSE, ttl: 3_600_000, updateAgeOnGet: true }),
}

function memoryChild(name) {
  require('lrukit') // load the addon before measuring
  require('@isaacs/ttlcache')
  require('lru-cache')
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
  process.stdout.write(JSON.stringify({ heap: (after.heap - before.heap) / UNIVERSE, rss: (after.rss - before.rss) / UNIVERSE }))
}

// ----------------------------------------------------------------- parent side
const run = (args) => JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 }))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n) => Math.round(n).toLocaleString('en-US')
const spread = (xs, f = fmt) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`
const EXPIRE_CASES = []
for (const flows of [10_000, 1_000_000]) {
  for (const [engine, method] of [['wheel', 'expire'], ['dashmap', 'expire'], ['wheel', 'purge'], ['dashmap', 'purge']]) EXPIRE_CASES.push({ engine, method, flows })
}
const VALUE_LABEL = {
  string: 'short strings (~30 bytes)',
  number: 'numbers',
  object: 'objects `{ id, name, tags }` (FlowTable rows: stored as JSON strings, `JSON.stringify` on create and `JSON.parse` on each hit)',
}

function throughputTable(results) {
  const lines = [
    `#### Idle-timeout workload: zipf 0.99 over 1M flows, timeout ${TIMEOUT} ms, get-and-touch else create, reaper every 1,000 packets`,
    '',
    `Each row: one implementation alone in its own process, implementations alternating, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (min–max).`,
    'Default options (`new FlowTable({ timeout })`; the dashmap rows add `engine: \'dashmap\'`). lru-cache keeps stale flows',
    'until they are looked up or pushed out by `max` (see "flows held"); its ttlAutopurge timers (one per entry)',
    'cannot fire inside the synchronous timed loop, so that row measures the cost of arming them.',
    'FlowTable does not store objects (strings, numbers, bigints, booleans, null, Buffers): its object rows store',
    'each object as a JSON string, as a user would, and pay `JSON.stringify` on create and `JSON.parse` on each hit',
    '(the batched rows read no values: stringify only).',
    '',
  ]
  for (const type of VALUE_TYPES) {
    lines.push(`##### Values: ${VALUE_LABEL[type]}`, '')
    lines.push('| implementation | packets/s | ns/packet | flows held at the end | vs ttlcache |', '|---|---:|---:|---:|---:|')
    const base = median(results[type][BASE].map((x) => x.opsPerSec))
    for (const name of NAMES) {
      const xs = results[type][name].map((x) => x.opsPerSec)
      const held = median(results[type][name].map((x) => x.size))
      lines.push(`| ${name} | ${spread(xs)} | ${(1e9 / median(xs)).toFixed(1)} | ${fmt(held)} | ${(median(xs) / base).toFixed(2)}× |`)
    }
    lines.push('')
  }
  const xs = results.noop.map((x) => x.opsPerSec)
  lines.push('| native call | calls/s | ns/call |', '|---|---:|---:|', `| noop() (crossing only) | ${spread(xs)} | ${(1e9 / median(xs)).toFixed(1)} |`)
  return lines.join('\n')
}

function expireTable(expire) {
  const lines = [
    `#### One \`expire({ max: 1000 })\` / \`purge({ max: 1000 })\` call (steady state, 1,000 flows due per call; median of ${ROUNDS} process${ROUNDS > 1 ? 'es' : ''} (min–max) of each process's p50)`,
    '',
    '| engine | call | flows | p50 µs | mean µs | 1M vs 10k (p50) |',
    '|---|---|---:|---:|---:|---:|',
  ]
  const key = (c) => `${c.engine} ${c.method} ${c.flows}`
  const f1 = (n) => n.toFixed(1)
  for (const c of EXPIRE_CASES) {
    const rs = expire[key(c)]
    const p50 = rs.map((r) => r.p50us)
    const small = expire[key({ ...c, flows: 10_000 })].map((r) => r.p50us)
    lines.push(
      `| ${c.engine} | ${c.method} | ${c.flows.toLocaleString('en-US')} | ${spread(p50, f1)} | ${f1(median(rs.map((r) => r.meanUs)))} | ${
        c.flows === 10_000 ? '' : (median(p50) / median(small)).toFixed(2) + '×'
      } |`,
    )
  }
  return lines.join('\n')
}

function memoryTable(rows) {
  const wheel = rows.find((r) => r.name === 'FlowTable (wheel)')
  const lines = [
    '#### Memory per flow (1M flows, string keys `flow:<i>` already on the heap, number values, each table in its own process)',
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
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4])
  if (process.argv[2] === '--expire-child') return expireChild(process.argv[3], process.argv[4], Number(process.argv[5]))
  if (process.argv[2] === '--memory-child') return memoryChild(process.argv[3])
  const { buildIfNeeded } = await import('../scripts/build-if-needed.mjs')
  buildIfNeeded()
  const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`
  console.log(`lrukit FlowTable benchmark on ${runtime}${quick ? ' (quick)' : ''}\n`)
  const results = { noop: [] }
  const expire = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const type of VALUE_TYPES) {
      for (let i = 0; i < NAMES.length; i++) {
        const name = NAMES[(i + r) % NAMES.length]
        const res = run(['--child', type, name])
        ;((results[type] ??= {})[name] ??= []).push(res)
        console.log(`round ${r + 1} ${type} ${name}: ${fmt(res.opsPerSec)} packets/s, ${res.size} held`)
      }
    }
    results.noop.push(run(['--child', 'number', 'noop']))
    for (let i = 0; i < EXPIRE_CASES.length; i++) {
      const c = EXPIRE_CASES[(i + r) % EXPIRE_CASES.length]
      ;(expire[`${c.engine} ${c.method} ${c.flows}`] ??= []).push(run(['--expire-child', c.engine, c.method, String(c.flows)]))
    }
  }
  const mem = Object.keys(MEMORY_IMPLS).map((name) => ({ name, ...run(['--memory-child', name]) }))
  const md = [
    `### FlowTable benchmark (${runtime}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    throughputTable(results),
    '',
    expireTable(expire),
    '',
    memoryTable(mem),
    '',
  ].join('\n')
  console.log(`\n${md}`)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(
      `${here}results/flow-table.json`,
      `${JSON.stringify({ runtime, date: new Date().toISOString(), rounds: ROUNDS, seconds: SECONDS, results, expire, memory: mem }, null, 2)}\n`,
    )
    writeFileSync(`${here}results/flow-table.md`, md)
    console.log('wrote bench/results/flow-table.json and bench/results/flow-table.md')
  }
}

await main()
