// `npm run bench:request-loop`: where a native cache index should win — a server whose heap holds
// a large cache while every request allocates. (LruCache's keys and index are native; its values
// stay on the V8 heap, as every cache's do here: the values are made by the program. A tuned row,
// `offHeap: true`, copies string values into native memory instead.)
//
// Each request does 20 `get`s (uniform over the resident keys: every one a hit) and builds a JSON
// response from what it found (allocating work, as a handler does). A cache of 1M or 5M resident
// entries (short string values, or small objects), each implementation alone in its own process,
// alternating, 3 rounds (median, min–max). Every process measures twice: right after filling the
// cache ("no forced GC": the collector still has the fill's garbage to deal with) and again after
// a forced full GC. Reported: requests/s, p99 and p99.9 request latency, the worst GC pause and the
// number of major GCs during the timed run (PerformanceObserver 'gc' entries).
//
// Results: bench/results/request-loop.{json,md}; `--quick` (1M only, 1 round) writes nothing.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { PerformanceObserver, constants } from 'node:perf_hooks'

import { rng, valueOf } from './workload.mjs'

const require = createRequire(import.meta.url)
const script = fileURLToPath(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 3
const SIZES = quick ? [1_000_000] : [1_000_000, 5_000_000]
const IMPLS = ['lrukit', 'lrukit offHeap (tuned)', 'lru-cache', 'Map']
const VALUE_TYPES = ['string', 'object']
const SECONDS = quick ? 1 : 6
const GETS = 20

function make(impl, capacity) {
  if (impl === 'lrukit') return new (require('lrukit').LruCache)({ capacity })
  // Tuned for this workload: primitives copied off the V8 heap.
  if (impl === 'lrukit offHeap (tuned)') return new (require('lrukit').LruCache)({ capacity, offHeap: true })
  if (impl === 'lru-cache') return new (require('lru-cache').LRUCache)({ max: capacity })
  return new Map()
}

async function measure(cache, keys, seed) {
  const rand = rng(seed)
  const n = keys.length
  const pauses = []
  let majors = 0
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      pauses.push(e.duration)
      if ((e.detail?.kind ?? e.kind) === constants.NODE_PERFORMANCE_GC_MAJOR) majors++
    }
  })
  obs.observe({ entryTypes: ['gc'] })
  const lat = []
  let sink = 0
  const start = performance.now()
  const end = start + SECONDS * 1000
  let now = start
  let requests = 0
  while (now < end) {
    const t0 = now
    const items = []
    for (let j = 0; j < GETS; j++) {
      const v = cache.get(keys[(rand() * n) | 0])
      if (v !== undefined) items.push(v)
    }
    sink += JSON.stringify({ id: requests, found: items.length, items }).length
    requests++
    now = performance.now()
    lat.push(now - t0)
  }
  const elapsed = (now - start) / 1000
  // GC entries are delivered on the event loop: let them arrive.
  await new Promise((resolve) => setTimeout(resolve, 100))
  obs.disconnect()
  if (sink === 0) throw new Error('no responses')
  lat.sort((a, b) => a - b)
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]
  return { rps: requests / elapsed, p99: pct(0.99), p999: pct(0.999), worstPause: pauses.length ? Math.max(...pauses) : 0, majors }
}

async function child(impl, size, type) {
  const keys = Array.from({ length: size }, (_, i) => `flow:${i}`)
  const cache = make(impl, size)
  for (let i = 0; i < size; i++) cache.set(keys[i], valueOf(type, i))
  const noGc = await measure(cache, keys, 1)
  globalThis.gc()
  const afterGc = await measure(cache, keys, 2)
  process.stdout.write(JSON.stringify({ noGc, afterGc }))
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], Number(process.argv[4]), process.argv[5])
  const { buildIfNeeded } = await import('../scripts/build-if-needed.mjs')
  buildIfNeeded()
  const results = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const size of SIZES) {
      for (const type of VALUE_TYPES) {
        for (let i = 0; i < IMPLS.length; i++) {
          const impl = IMPLS[(i + r) % IMPLS.length]
          const out = JSON.parse(
            execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', script, '--child', impl, String(size), type], {
              encoding: 'utf8',
            }),
          )
          ;(((results[size] ??= {})[type] ??= {})[impl] ??= []).push(out)
          console.log(`round ${r + 1} ${size} ${type} ${impl}: ${Math.round(out.afterGc.rps)} req/s after GC, worst pause ${out.afterGc.worstPause.toFixed(1)} ms`)
        }
      }
    }
  }
  const f1 = (x) => x.toFixed(1)
  const spread = (xs, f = f1) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`
  const md = [`### Request loop: a large resident cache while every request allocates (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`, '']
  md.push(
    `Each request: ${GETS} \`get\`s (uniform, all hits) and a JSON response built from them. Each implementation alone in its own process, alternating, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (min–max); ${SECONDS} s timed per phase. Worst pause: the longest GC during the timed run.`,
    '',
  )
  md.push('| entries | values | phase | implementation | requests/s | p99 ms | p99.9 ms | worst GC pause ms | major GCs |', '|---:|---|---|---|---:|---:|---:|---:|---:|')
  for (const size of SIZES) {
    for (const type of VALUE_TYPES) {
      for (const phase of ['noGc', 'afterGc']) {
        for (const impl of IMPLS) {
          const rs = results[size][type][impl].map((x) => x[phase])
          md.push(
            `| ${size.toLocaleString('en-US')} | ${type} | ${phase === 'noGc' ? 'no forced GC' : 'after a full GC'} | ${impl} | ${spread(rs.map((x) => x.rps), (x) => Math.round(x).toLocaleString('en-US'))} | ${spread(rs.map((x) => x.p99), (x) => x.toFixed(3))} | ${spread(rs.map((x) => x.p999), (x) => x.toFixed(3))} | ${spread(rs.map((x) => x.worstPause))} | ${spread(rs.map((x) => x.majors), String)} |`,
          )
        }
      }
    }
  }
  const big = SIZES.at(-1)
  const goalRows = []
  for (const type of VALUE_TYPES) {
    const m = (impl, phase, k) => median(results[big][type][impl].map((x) => x[phase][k]))
    for (const [ours, name] of [['lrukit', 'LruCache'], ['lrukit offHeap (tuned)', 'LruCache offHeap (tuned)']]) for (const phase of ['noGc', 'afterGc']) {
      const label = `${name}, ${big.toLocaleString('en-US')} ${type}, ${phase === 'noGc' ? 'no forced GC' : 'after a full GC'}`
      const pause = m(ours, phase, 'worstPause') / m('lru-cache', phase, 'worstPause')
      const p999 = m(ours, phase, 'p999') / m('lru-cache', phase, 'p999')
      const rps = m(ours, phase, 'rps') / m('lru-cache', phase, 'rps')
      goalRows.push(`| ${label} | ${pause.toFixed(2)}× | ${pause <= 0.25 ? 'met' : '**not met**'} | ${p999.toFixed(2)}× | ${p999 <= 1 ? 'met' : '**not met**'} | ${rps.toFixed(2)}× | ${rps >= 1 ? 'met' : '**not met**'} |`)
    }
  }
  md.push('', '| vs lru-cache | worst pause (goal ≤ 0.25×) | | p99.9 (goal ≤ 1×) | | throughput (goal ≥ 1×) | |', '|---|---:|---|---:|---|---:|---|', ...goalRows)
  const text = `${md.join('\n')}\n`
  console.log(`\n${text}`)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(`${here}results/request-loop.md`, text)
    writeFileSync(`${here}results/request-loop.json`, `${JSON.stringify({ node: process.version, date: new Date().toISOString(), rounds: ROUNDS, results }, null, 2)}\n`)
  }
}

await main()
