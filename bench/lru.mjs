// `npm run bench:lru`: LruCache beside the JavaScript LRUs, measured as a user would compare them.
//
// Method: every (workload, value type, implementation) runs alone in its own fresh process
// (`--child`), the implementations alternate within each round (the first one rotates), and each
// row is the median of ROUNDS rounds with its min–max. Default options as a user writes them
// (`new LruCache({ capacity })`, `new LRUCache({ max })`, ...), and one labelled tuned row:
// LruCache with `offHeap: true`.
//
// Workloads (keys 'flow:<i>', built before timing; values prebuilt per key, so the timed loop is
// cache work only):
//   (a) zipf(s=0.99) over 1M keys, capacity 100k, get-else-set (a miss stores the key's value)
//   (b) uniform random hits over 1M resident entries (capacity 1M)
//   (c) workload (a) in batches of 1,000 keys: lrukit getMany + setMany; the others per key
// Hit rate: an exact LRU's on the zipf stream's second pass (the same for every implementation).
// Goals: ≥ 1.0× lru-cache on (a) with string and number values, each beside the floor of a native
// get-else-set (probeKey once per hit, twice per miss).
// Value types, each its own row: short strings (~30 bytes), objects ({ id, name, tags }), numbers.
// Boundary rows (lrukit's process, no cache): `noop()`, `echo(key)` (one argument in and out),
// and `probeKey(key)`: the native call that reads a key as LruCache does and nothing else — the
// floor of any native get.
// Heap: V8 heap growth after inserting 1M entries of each value type, each cache in its own
// process (the keys and values are made, and kept alive, before measuring).
//
// Results: bench/results/lru.{json,md}; `--quick` (1 round, short runs) writes nothing.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { rng, timed as timedFor, valuesOf as valuesFor, zipfStream } from './workload.mjs'

const require = createRequire(import.meta.url)
const script = fileURLToPath(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 3
const SECONDS = quick ? 0.4 : 1.5

const UNIVERSE = 1_000_000
const CAPACITY = 100_000
const BATCH = 1_000
const STREAM = 1 << 20 // sampled operations, cycled through
const WARM = 300_000

const IMPLS = ['lrukit', 'lrukit offHeap (tuned)', 'lru-cache', 'lru.min', 'mnemonist']
const VALUE_TYPES = ['string', 'object', 'number']
const WORKLOADS = {
  a: 'zipf 0.99 over 1M keys, capacity 100k, get-else-set',
  b: 'uniform hits over 1M resident entries',
  c: 'workload (a) in batches of 1,000 keys (lrukit: getMany + setMany; the others per key)',
}

function make(impl, capacity) {
  switch (impl) {
    case 'lrukit':
      return new (require('lrukit').LruCache)({ capacity })
    case 'lrukit offHeap (tuned)': // tuned for a large heap: primitives copied into native memory
      return new (require('lrukit').LruCache)({ capacity, offHeap: true })
    case 'lru-cache':
      return new (require('lru-cache').LRUCache)({ max: capacity })
    case 'lru.min':
      return require('lru.min').createLRU({ max: capacity })
    case 'mnemonist':
      return new (require('mnemonist/lru-cache'))(capacity)
  }
  throw new Error(`unknown implementation ${impl}`)
}

const valuesOf = (type) => valuesFor(type, UNIVERSE)
const timed = (step, ops) => timedFor(step, ops, { seconds: SECONDS, warmMs: 100 })

// ------------------------------------------------------------------ child side
function child(workload, type, impl) {
  const keys = Array.from({ length: UNIVERSE }, (_, i) => `flow:${i}`)
  const values = valuesOf(type)
  const OPS = 1000
  let opsPerSec
  if (impl === 'noop' || impl === 'echo' || impl === 'probeKey') {
    const native = require('../native.js')
    const stream = zipfStream(UNIVERSE, 0.99, STREAM, 42).map((i) => keys[i])
    let p = 0
    const f = native[impl]
    opsPerSec = timed(() => {
      for (let j = 0; j < OPS; j++) {
        f(stream[p])
        p = p + 1 === STREAM ? 0 : p + 1
      }
    }, OPS)
  } else if (workload === 'b') {
    const c = make(impl, UNIVERSE)
    for (let i = 0; i < UNIVERSE; i++) c.set(keys[i], values[i])
    const rand = rng(7)
    const stream = Array.from({ length: STREAM }, () => keys[(rand() * UNIVERSE) | 0])
    let p = 0
    let misses = 0
    opsPerSec = timed(() => {
      for (let j = 0; j < OPS; j++) {
        if (c.get(stream[p]) === undefined) misses++
        p = p + 1 === STREAM ? 0 : p + 1
      }
    }, OPS)
    if (misses) throw new Error(`${impl}: ${misses} misses in a hit-only workload`)
  } else {
    const ids = zipfStream(UNIVERSE, 0.99, STREAM, 42)
    const c = make(impl, CAPACITY)
    let p = 0
    const one = () => {
      const id = ids[p]
      p = p + 1 === STREAM ? 0 : p + 1
      const k = keys[id]
      if (c.get(k) === undefined) c.set(k, values[id])
    }
    for (let j = 0; j < WARM; j++) one()
    if (workload === 'c' && impl.startsWith('lrukit')) {
      const batches = []
      for (let b = 0; b + BATCH <= STREAM; b += BATCH) batches.push(ids.slice(b, b + BATCH))
      let q = 0
      const batchKeys = Array.from({ length: BATCH })
      opsPerSec = timed(() => {
        const batch = batches[q]
        q = q + 1 === batches.length ? 0 : q + 1
        for (let j = 0; j < BATCH; j++) batchKeys[j] = keys[batch[j]]
        const got = c.getMany(batchKeys)
        const missing = []
        for (let j = 0; j < BATCH; j++) if (got[j] === undefined) missing.push([batchKeys[j], values[batch[j]]])
        if (missing.length) c.setMany(missing)
      }, BATCH)
    } else {
      opsPerSec = timed(() => {
        for (let j = 0; j < OPS; j++) one()
      }, OPS)
    }
    // Still a working cache after the run: the last key used is there.
    const last = keys[ids[(p + STREAM - 1) % STREAM]]
    if (workload === 'a' && c.get(last) === undefined) throw new Error(`${impl}: the last key used is missing`)
  }
  process.stdout.write(JSON.stringify({ opsPerSec }))
}

function heapChild(type, impl) {
  const N = 1_000_000
  require('lrukit') // load the addon before measuring
  const values = valuesOf(type)
  const keys = Array.from({ length: N }, (_, i) => `flow:${i}`)
  // Kept alive to the end: the keys and values exist before any cache does (as in an app), so
  // only what the cache itself adds is counted, whether it references them or copies them.
  globalThis.benchInputs = [keys, values]
  globalThis.gc()
  globalThis.gc()
  const before = process.memoryUsage()
  const c = make(impl, N)
  for (let i = 0; i < N; i++) c.set(keys[i], values[i])
  globalThis.gc()
  globalThis.gc()
  const after = process.memoryUsage()
  if (c.get('flow:5') !== values[5]) throw new Error('cache lost an entry')
  process.stdout.write(JSON.stringify({ heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20, rssMB: (after.rss - before.rss) / 2 ** 20 }))
}

// ----------------------------------------------------------------- parent side
const run = (args) => JSON.parse(execFileSync(process.execPath, ['--expose-gc', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 }))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n) => Math.round(n).toLocaleString('en-US')

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4], process.argv[5])
  if (process.argv[2] === '--heap-child') return heapChild(process.argv[3], process.argv[4])
  const { buildIfNeeded } = await import('../scripts/build-if-needed.mjs')
  buildIfNeeded()
  const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`
  const results = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const w of Object.keys(WORKLOADS)) {
      for (const type of VALUE_TYPES) {
        for (let i = 0; i < IMPLS.length; i++) {
          const impl = IMPLS[(i + r) % IMPLS.length]
          const res = run(['--child', w, type, impl])
          ;((results[w] ??= {})[type] ??= {})[impl] ??= []
          results[w][type][impl].push(res)
          console.log(`round ${r + 1} (${w}) ${type} ${impl}: ${fmt(res.opsPerSec)} ops/s`)
        }
      }
    }
    for (const probe of ['noop', 'echo', 'probeKey']) {
      const res = run(['--child', 'a', 'number', probe])
      ;((results.boundary ??= {})[probe] ??= []).push(res)
    }
  }
  // The hit rate of any exact LRU on the zipf stream: lru-cache run twice over it, hits counted on
  // the second pass.
  const zipfHitRate = (() => {
    const ids = zipfStream(UNIVERSE, 0.99, STREAM, 42)
    const c = make('lru-cache', CAPACITY)
    let hits = 0
    for (let pass = 0; pass < 2; pass++) {
      hits = 0
      for (const id of ids) {
        if (c.get(id) === undefined) c.set(id, 1)
        else hits++
      }
    }
    return hits / ids.length
  })()
  const heap = {}
  for (const type of VALUE_TYPES) for (const impl of IMPLS) (heap[type] ??= {})[impl] = run(['--heap-child', type, impl])

  const spread = (xs) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
  const md = [`### LruCache benchmark (${runtime}, ${new Date().toISOString().slice(0, 10)})`, '']
  md.push(
    `Each row: one implementation alone in its own process, implementations alternating, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (min–max), ops/s. Default options, and one labelled tuned row: \`new LruCache({ capacity, offHeap: true })\`. Values prebuilt per key: short strings (~30 bytes), objects \`{ id, name, tags }\`, numbers.`,
    '',
  )
  for (const [w, title] of Object.entries(WORKLOADS)) {
    md.push(`#### (${w}) ${title}`, '')
    if (w !== 'b') md.push(`hit rate ${(100 * zipfHitRate).toFixed(1)}% (an exact LRU's, on the stream's second pass)`, '')
    md.push('| values | implementation | ops/s | vs lru-cache |', '|---|---|---:|---:|')
    for (const type of VALUE_TYPES) {
      const base = median(results[w][type]['lru-cache'].map((x) => x.opsPerSec))
      for (const impl of IMPLS) {
        const xs = results[w][type][impl].map((x) => x.opsPerSec)
        const label = w !== 'c' ? impl : impl.startsWith('lrukit') ? impl.replace('lrukit', 'lrukit getMany/setMany') : `${impl} (per key)`
        md.push(`| ${type} | ${label} | ${spread(xs)} | ${(median(xs) / base).toFixed(2)}× |`)
      }
    }
    md.push('')
  }
  md.push('#### The boundary (calls per second over the zipf key stream, lrukit\'s process)', '')
  md.push('| native call | calls/s | ns/call |', '|---|---:|---:|')
  const probes = { noop: 'noop() (crossing only)', echo: 'echo(key) (one argument in and out)', probeKey: 'probeKey(key) (reads the key as LruCache does: the floor of a native get)' }
  for (const [probe, label] of Object.entries(probes)) {
    const xs = results.boundary[probe].map((x) => x.opsPerSec)
    md.push(`| ${label} | ${spread(xs)} | ${(1e9 / median(xs)).toFixed(1)} |`)
  }
  // The goals: ≥ 1.0× lru-cache on (a) with string and with number values; where the boundary
  // makes that impossible, how close LruCache gets to the floor: one probeKey per hit, two per miss.
  const nsPerOp = (w, type, impl) => 1e9 / median(results[w][type][impl].map((x) => x.opsPerSec))
  const floorNs = (1e9 / median(results.boundary.probeKey.map((x) => x.opsPerSec))) * (2 - zipfHitRate)
  md.push('#### Goals', '')
  md.push(`Floor of a native get-else-set on workload (a): one key read per hit and two per miss, ${floorNs.toFixed(0)} ns per operation (probeKey × (2 − hit rate)).`, '')
  md.push('| goal | lrukit ns/op | lru-cache ns/op | lrukit / lru-cache ops/s | lrukit − floor, ns/op | result |', '|---|---:|---:|---:|---:|---|')
  for (const type of ['string', 'number']) {
    const ours = nsPerOp('a', type, 'lrukit')
    const theirs = nsPerOp('a', type, 'lru-cache')
    md.push(`| (a) ${type} values: ≥ 1.0× lru-cache | ${ours.toFixed(0)} | ${theirs.toFixed(0)} | ${(theirs / ours).toFixed(2)}× | ${(ours - floorNs).toFixed(0)} | ${theirs / ours >= 1 ? 'met' : '**not met**'} |`)
  }
  md.push('', '#### V8 heap growth after inserting 1M entries (each cache in its own process)', '')
  md.push('| values | implementation | heap MB | RSS MB |', '|---|---|---:|---:|')
  for (const type of VALUE_TYPES) for (const impl of IMPLS) md.push(`| ${type} | ${impl} | ${heap[type][impl].heapMB.toFixed(1)} | ${heap[type][impl].rssMB.toFixed(1)} |`)
  const text = `${md.join('\n')}\n`
  console.log(`\n${text}`)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(`${here}results/lru.json`, `${JSON.stringify({ runtime, date: new Date().toISOString(), rounds: ROUNDS, results, heap }, null, 2)}\n`)
    writeFileSync(`${here}results/lru.md`, text)
  }
}

await main()
