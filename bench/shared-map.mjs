// `npm run bench` (second part): SharedMap beside lmdb-js, Redis and a per-process lru-cache.
//
// Throughput and latency, 1 and 2 processes, get-only and 90/10 get/set:
//   100k keys ('key:<i>') loaded beforehand with 32-byte string values into every store;
//   each process reads (and, for 90/10, overwrites) keys drawn uniformly at random
//   SharedMap, three rows, each its own map created with the options users would write:
//     { capacity: 200_000 } (the headline row; the ratio column compares every row to it),
//     { memorySize: 64 MiB }, and { capacity: 200_000, avgValueBytes: 32 } (tuned)
//   lmdb-js (get / putSync) with noSync (no fsync: its fastest mode, and like SharedMap not
//   durable) and, for 90/10 only, with its default durable commits (fsync per putSync)
//   Redis via ioredis: awaited one op at a time, and pipelined 100 ops per round trip
//   lru-cache: one private cache per process (reference: not shared, nothing crosses processes)
//   + a native noop() row: the JS <-> native boundary alone
// Every configuration runs alone in fresh child processes, ROUNDS times, alternating: round 1
// runs every configuration once, then round 2, then round 3. The processes of a run set up,
// warm up, then start together on the parent's signal; a run's ops/s is the sum over them of
// ops / elapsed. Reported: the median run's ops/s, the spread (min-max), and p50/p99 as the
// median over runs of the slower process's percentile (every 8th op timed on its own, the
// timer's ~40 ns included; pipelined Redis: batch time / 100).
//
// Memory for the same 100k entries: SharedMap stats().memoryBytes and allocatedBytes (each
// configuration), lmdb-js's data.mdb size, Redis used_memory after loading minus before, and
// lru-cache's heap growth (child process with --expose-gc).
//
// Payload efficiency (untimed): a { memorySize: 64 MiB } map filled with new keys, phase A 90%
// 200-byte / 10% 8 KiB values until the first eviction, phase B 90% 8 KiB / 10% 200-byte values
// for 2 x memorySize of written bytes; efficiency = (allocatedBytes - size) / memorySize.
// Goals (met / not met, with the figure) are computed from these results.
//
// A real redis-server (Debian package `redis-server`) is started on 127.0.0.1 by this script.
// Results: bench/results/shared-map.{json,md}; `--quick` (1 round of 0.5 s) writes nothing.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const script = fileURLToPath(import.meta.url)
const quick = process.argv.includes('--quick')
const KEYS = 100_000
const VALUE = 'v'.repeat(32)
const SECONDS = quick ? 0.5 : 2
const ROUNDS = quick ? 1 : 3
const MiB = 2 ** 20
const SHARED = {
  'SharedMap { capacity: 200_000 }': { capacity: 200_000 },
  'SharedMap { memorySize: 64 MiB }': { memorySize: 64 * MiB },
  'SharedMap { capacity: 200_000, avgValueBytes: 32 } (tuned)': { capacity: 200_000, avgValueBytes: 32 },
}
const HEADLINE = 'SharedMap { capacity: 200_000 }'
const LMDB = 'lmdb-js (noSync)'
const LMDB_SYNC = 'lmdb-js (default: durable commits)'
const GET_ONLY = 'get-only'
const MIXED = '90/10 get/set'

/** Deterministic uniform numbers in [0, 1): a 32-bit LCG. */
function lcg(seed) {
  return () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32
}

const keyList = () => Array.from({ length: KEYS }, (_, i) => 'key:' + i)

// ---------------------------------------------------------------- child side
async function child(impl, workload, seconds, setup) {
  const { SharedMap } = require('lrukit')
  const { noop } = require('../native.js') // the benchmark probe, not part of the API
  const keys = keyList()
  const rand = lcg(process.pid)
  const stream = Array.from({ length: 1 << 18 }, () => keys[(rand() * KEYS) | 0])
  const writes = Array.from({ length: 1 << 18 }, () => rand() < 0.1)
  let get
  let set
  let pipelined = null
  let close = () => {}
  if (impl in SHARED) {
    const m = SharedMap.open(setup.maps[impl])
    get = (k) => m.get(k)
    set = (k, v) => m.set(k, v)
    close = () => m.close()
  } else if (impl.startsWith('lmdb-js')) {
    const { open } = require('lmdb')
    const db = open({ path: setup.path, noSync: impl === LMDB })
    get = (k) => db.get(k)
    set = (k, v) => db.putSync(k, v)
    close = () => db.close()
  } else if (impl.startsWith('Redis')) {
    const Redis = require('ioredis')
    const r = new Redis({ port: setup.port, host: '127.0.0.1', lazyConnect: true })
    await r.connect()
    close = () => r.disconnect()
    if (impl.includes('pipelined')) {
      pipelined = async (batch) => {
        const p = r.pipeline()
        for (const [k, w] of batch) {
          if (w) p.set(k, VALUE)
          else p.get(k)
        }
        await p.exec()
      }
    } else {
      get = (k) => r.get(k)
      set = (k, v) => r.set(k, v)
    }
  } else if (impl === 'lru-cache') {
    const { LRUCache } = require('lru-cache')
    const c = new LRUCache({ max: KEYS * 2 })
    for (const k of keys) c.set(k, VALUE)
    get = (k) => c.get(k)
    set = (k, v) => c.set(k, v)
  } else if (impl === 'native noop()') {
    get = () => noop()
    set = () => noop()
  }
  const mixed = workload === MIXED
  const lat = []
  let ops = 0
  let i = 0
  const mask = stream.length - 1
  const isAsync = impl.startsWith('Redis')
  // warm-up
  for (let w = 0; w < 2000 && !pipelined; w++) {
    const r = get(stream[w & mask])
    if (isAsync) await r
  }
  // Start together with the run's other processes.
  process.send('ready')
  await new Promise((resolve) => process.once('message', resolve))
  const start = performance.now()
  const deadline = start + seconds * 1000
  while (performance.now() < deadline) {
    if (pipelined) {
      const batch = []
      for (let b = 0; b < 100; b++, i++) batch.push([stream[i & mask], mixed && writes[i & mask]])
      const t0 = process.hrtime.bigint()
      await pipelined(batch)
      lat.push(Number(process.hrtime.bigint() - t0) / 100)
      ops += 100
      continue
    }
    for (let b = 0; b < 256; b++, i++) {
      const k = stream[i & mask]
      const w = mixed && writes[i & mask]
      if ((i & 7) === 0) {
        const t0 = process.hrtime.bigint()
        const r = w ? set(k, VALUE) : get(k)
        if (isAsync) await r
        lat.push(Number(process.hrtime.bigint() - t0))
      } else {
        const r = w ? set(k, VALUE) : get(k)
        if (isAsync) await r
      }
      ops++
    }
  }
  const elapsed = (performance.now() - start) / 1000
  close()
  lat.sort((a, b) => a - b)
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]
  process.send({ opsPerSec: ops / elapsed, p50: pct(0.5), p99: pct(0.99) }, () => process.disconnect())
}

/** Run with --expose-gc: V8 heap growth of an LRUCache holding the 100k entries. */
function childHeap() {
  const { LRUCache } = require('lru-cache')
  gc()
  const before = process.memoryUsage().heapUsed
  const c = new LRUCache({ max: KEYS * 2 })
  // Each entry gets its own copy of the value string, as every other store copies it.
  for (let i = 0; i < KEYS; i++) c.set('key:' + i, Buffer.from(VALUE).toString('latin1'))
  gc()
  const after = process.memoryUsage().heapUsed
  process.stdout.write(JSON.stringify({ heapBytes: after - before, entries: c.size }))
}

// --------------------------------------------------------------- parent side
/** A real redis-server (the test fixture's) and an ioredis client connected to it. */
async function startRedis() {
  const { startRedis: launch } = await import('../__test__/fixtures/redis-server.mjs')
  const server = await launch()
  const Redis = require('ioredis')
  const client = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
  await client.connect()
  return { port: server.port, client, stop: () => (client.disconnect(), server.stop()) }
}

async function redisUsedMemory(client) {
  return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))[1])
}

/** One run: n fresh child processes that start timing together; throughput summed over them. */
async function runChildren(n, impl, workload, setup) {
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, [script, '--child', impl, workload, String(SECONDS), JSON.stringify(setup)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  )
  const message = (p) =>
    new Promise((resolve, reject) => {
      p.once('message', resolve)
      p.once('close', (code) => reject(new Error(`${impl} child exited ${code}`)))
    })
  try {
    await Promise.all(procs.map(message))
    const results = Promise.all(procs.map(message))
    for (const p of procs) p.send('go')
    const res = await results
    return {
      opsPerSec: res.reduce((a, r) => a + r.opsPerSec, 0),
      p50: Math.max(...res.map((r) => r.p50)),
      p99: Math.max(...res.map((r) => r.p99)),
    }
  } catch (e) {
    for (const p of procs) p.kill()
    throw e
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Fill a { memorySize: 64 MiB } map with mixed-size values; payload bytes resident / memorySize. */
function payloadEfficiency(SharedMap) {
  const memorySize = 64 * MiB
  const name = `bench${process.pid}-efficiency`
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { memorySize })
  const small = 'p'.repeat(200)
  const large = 'q'.repeat(8192)
  const rand = lcg(12345)
  const measure = (phase, description, written) => {
    const s = map.stats()
    const payloadBytes = s.allocatedBytes - s.size
    return { phase, description, bytesWritten: written, entries: s.size, payloadBytes, efficiency: payloadBytes / memorySize, evictionsByReason: s.evictionsByReason }
  }
  try {
    let written = 0
    for (let i = 0; map.stats().evictions === 0; i++) {
      const k = 'a:' + i
      const v = rand() < 0.9 ? small : large
      map.set(k, v)
      written += k.length + v.length
    }
    const a = measure('A', "new keys 'a:<i>', values 200 B (90%) / 8,192 B (10%), until the first eviction", written)
    written = 0
    for (let i = 0; written < 2 * memorySize; i++) {
      const k = 'b:' + i
      const v = rand() < 0.9 ? large : small
      map.set(k, v)
      written += k.length + v.length
    }
    const b = measure('B', "then new keys 'b:<i>', values 8,192 B (90%) / 200 B (10%), until 2 × memorySize of key + value bytes written", written)
    return { memorySize, phases: [a, b] }
  } finally {
    map.close()
    SharedMap.unlink(name)
  }
}

const num = (n) => Math.round(n).toLocaleString('en-US')
const us = (ns) => `${(ns / 1000).toFixed(2)} µs`

async function main() {
  if (process.argv[2] === '--child') {
    const [, , , impl, workload, seconds, setup] = process.argv
    return child(impl, workload, Number(seconds), JSON.parse(setup))
  }
  if (process.argv[2] === '--child-heap') return childHeap()
  const { buildIfNeeded, explainAndExit } = await import('../scripts/build-if-needed.mjs')
  const { findRedisServer } = await import('../__test__/fixtures/redis-server.mjs')
  if (!findRedisServer()) {
    explainAndExit(
      'the SharedMap benchmark compares against a real Redis and redis-server is not on PATH: install it (Debian: apt-get install redis-server; macOS: brew install redis) and run it again.',
    )
  }
  buildIfNeeded()
  const { SharedMap } = require('lrukit')
  const { open } = require('lmdb')
  const keys = keyList()

  const maps = {}
  const handles = {}
  for (const [i, [label, options]] of Object.entries(SHARED).entries()) {
    maps[label] = `bench${process.pid}-${i}`
    SharedMap.unlink(maps[label])
    handles[label] = SharedMap.create(maps[label], options)
    for (const k of keys) handles[label].set(k, VALUE)
  }
  const dir = mkdtempSync(join(tmpdir(), 'lrukit-lmdb-'))
  const redis = await startRedis()
  const configs = []
  const memory = []
  try {
    const db = open({ path: dir, noSync: true })
    await db.transaction(() => {
      for (const k of keys) db.put(k, VALUE)
    })
    await db.close()
    const redisBefore = await redisUsedMemory(redis.client)
    for (let b = 0; b < KEYS; b += 1000) {
      const p = redis.client.pipeline()
      for (const k of keys.slice(b, b + 1000)) p.set(k, VALUE)
      await p.exec()
    }
    const redisAfter = await redisUsedMemory(redis.client)

    for (const label in handles) {
      const s = handles[label].stats()
      memory.push({ store: label, bytes: s.memoryBytes, allocatedBytes: s.allocatedBytes, how: '`stats().memoryBytes`: the whole segment, fixed at creation' })
    }
    memory.push({ store: 'lmdb-js', bytes: statSync(join(dir, 'data.mdb')).size, how: 'size of `data.mdb` after loading' })
    memory.push({ store: 'Redis', bytes: redisAfter - redisBefore, usedMemoryBefore: redisBefore, usedMemoryAfter: redisAfter, how: `\`used_memory\` (INFO memory) after loading ${num(redisAfter)} B − before ${num(redisBefore)} B` })
    const heap = spawnSync(process.execPath, ['--expose-gc', script, '--child-heap'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    if (heap.status !== 0) throw new Error(`lru-cache heap child exited ${heap.status}`)
    memory.push({ store: 'lru-cache (one process)', bytes: JSON.parse(heap.stdout).heapBytes, how: 'V8 `heapUsed` growth building `LRUCache({ max: 200_000 })` with the entries, each with its own copy of the value string (gc() before each read)' })

    const setup = { maps, path: dir, port: redis.port }
    const impls = [...Object.keys(SHARED), LMDB, LMDB_SYNC, 'Redis (ioredis, awaited)', 'Redis (ioredis, pipelined x100)', 'lru-cache', 'native noop()']
    for (const workload of [GET_ONLY, MIXED]) {
      for (const procs of [1, 2]) {
        for (const impl of impls) {
          // Durability only matters to writes.
          if (impl === LMDB_SYNC && workload === GET_ONLY) continue
          configs.push({ workload, procs, impl, runs: [] })
        }
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of configs) {
        const run = await runChildren(c.procs, c.impl, c.workload, setup)
        c.runs.push(run)
        console.log(`round ${round}/${ROUNDS} ${c.workload.padEnd(14)} ${c.procs}p ${c.impl.padEnd(58)} ${num(run.opsPerSec).padStart(11)} ops/s  p50 ${Math.round(run.p50)} ns  p99 ${Math.round(run.p99)} ns`)
      }
    }
  } finally {
    await redis.stop()
    for (const label in handles) {
      handles[label].close()
      SharedMap.unlink(maps[label])
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const rows = configs.map((c) => {
    const ops = c.runs.map((r) => r.opsPerSec)
    return {
      ...c,
      opsPerSec: median(ops),
      min: Math.min(...ops),
      max: Math.max(...ops),
      p50: median(c.runs.map((r) => r.p50)),
      p99: median(c.runs.map((r) => r.p99)),
    }
  })
  const efficiency = payloadEfficiency(SharedMap)

  const find = (w, p, i) => rows.find((r) => r.workload === w && r.procs === p && r.impl === i)
  const goals = []
  for (const [id, workload, target] of [['a', GET_ONLY, 3], ['b', MIXED, 15]]) {
    const shm = find(workload, 2, HEADLINE).opsPerSec
    const lmdb = find(workload, 2, LMDB).opsPerSec
    goals.push({ id, goal: `2 processes, ${workload}: ${HEADLINE} vs ${LMDB}`, target: `≥ ${target}×`, figure: `${(shm / lmdb).toFixed(2)}× (${num(shm)} vs ${num(lmdb)} ops/s)`, met: shm >= target * lmdb })
  }
  for (const workload of [GET_ONLY, MIXED]) {
    const { p99 } = find(workload, 2, HEADLINE)
    goals.push({ id: 'c', goal: `p99, 2 processes, ${workload}`, target: '< 2 µs', figure: us(p99), met: p99 < 2000 })
  }
  for (const workload of [GET_ONLY, MIXED]) {
    const one = find(workload, 1, HEADLINE).opsPerSec
    const two = find(workload, 2, HEADLINE).opsPerSec
    goals.push({ id: 'd', goal: `scaling 1 → 2 processes, ${workload}`, target: '≥ 1.7×', figure: `${(two / one).toFixed(2)}× (${num(one)} → ${num(two)} ops/s)`, met: two >= 1.7 * one })
  }
  const efficiencyGoals = [['e', 0.75], ['f', 0.7]].map(([id, target], i) => {
    const { phase, efficiency: e } = efficiency.phases[i]
    return { id, goal: `payload efficiency, phase ${phase}`, target: `≥ ${target.toFixed(2)}`, figure: e.toFixed(3), met: e >= target }
  })
  goals.push(...efficiencyGoals)
  const verdict = (g) => (g.met ? 'met' : '**not met**')

  const cpu = cpus()
  const lines = [
    '### SharedMap benchmark',
    '',
    `Every configuration (workload × processes × implementation) runs alone, in fresh child processes, for ${SECONDS} s, in ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}: each round runs every configuration once, in the same order, before the next round starts, so the implementations alternate in time and a slow moment of the machine does not fall on one of them only. The processes of a run set up and warm up, then start timing together on a signal from the parent; a run's ops/s is the sum over its processes of operations ÷ elapsed time. The tables give the median run's ops/s and the spread (lowest–highest run). Latency: every 8th operation is timed on its own (the timer's ~40 ns included; pipelined Redis: each batch's time ÷ 100); a run's p50/p99 is the 50th/99th percentile of the slower process, and the tables give the median of the runs' values. All stores hold the same ${num(KEYS)} keys \`'key:<i>'\` with 32-byte string values, loaded before the runs; keys are drawn uniformly at random, and 90/10 sets overwrite existing keys with the same value.`,
    '',
    `#### Throughput and latency (Node ${process.version}, ${cpu.length} × ${cpu[0].model}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    `| workload | processes | implementation | ops/s (median, all processes) | spread (min–max) | p50 | p99 | ${HEADLINE} is |`,
    '|---|---:|---|---:|---:|---:|---:|---:|',
  ]
  for (const r of rows) {
    const ratio = r.impl === HEADLINE ? '' : `${(find(r.workload, r.procs, HEADLINE).opsPerSec / r.opsPerSec).toFixed(1)}× this`
    lines.push(`| ${r.workload} | ${r.procs} | ${r.impl} | ${num(r.opsPerSec)} | ${num(r.min)}–${num(r.max)} | ${us(r.p50)} | ${us(r.p99)} | ${ratio} |`)
  }
  lines.push('', '#### Goals', '', `From the \`${HEADLINE}\` rows and the payload efficiency below.`, '', '| | goal | target | figure | result |', '|---|---|---|---|---|')
  for (const g of goals) lines.push(`| ${g.id} | ${g.goal} | ${g.target} | ${g.figure} | ${verdict(g)} |`)
  lines.push(
    '',
    `#### Memory for the same ${num(KEYS)} entries`,
    '',
    'SharedMap `allocatedBytes`: the key and value bytes it stores (each key with its 1-byte type tag).',
    '',
    '| store | bytes | MiB | SharedMap `allocatedBytes` | measured as |',
    '|---|---:|---:|---:|---|',
  )
  for (const m of memory) lines.push(`| ${m.store} | ${num(m.bytes)} | ${(m.bytes / MiB).toFixed(2)} | ${m.allocatedBytes === undefined ? '' : num(m.allocatedBytes)} | ${m.how} |`)
  lines.push(
    '',
    '#### Payload efficiency',
    '',
    `One map \`{ memorySize: 64 MiB }\` (defaults otherwise), filled with string values of seeded random sizes, untimed. Efficiency = user payload resident (\`allocatedBytes − size\`: keys + values, without the 1-byte key tag) ÷ memorySize (${num(efficiency.memorySize)} B). Evictions are the map's totals at that point.`,
    '',
    '| phase | writes | key + value bytes written | entries stored | payload resident | efficiency | evictions room / capacity / manual | goal |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  )
  for (const [i, p] of efficiency.phases.entries()) {
    const g = efficiencyGoals[i]
    const e = p.evictionsByReason
    lines.push(`| ${p.phase} | ${p.description} | ${num(p.bytesWritten)} | ${num(p.entries)} | ${num(p.payloadBytes)} | ${p.efficiency.toFixed(3)} | ${num(e.room)} / ${num(e.capacity)} / ${num(e.manual)} | ${g.target}: ${verdict(g)} |`)
  }
  lines.push('')
  const md = lines.join('\n')
  console.log('\n' + md)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    const json = { node: process.version, cpus: cpu.length, date: new Date().toISOString(), keys: KEYS, seconds: SECONDS, rounds: ROUNDS, rows, memory, efficiency, goals }
    writeFileSync(`${here}results/shared-map.json`, JSON.stringify(json, null, 2))
    writeFileSync(`${here}results/shared-map.md`, md)
    console.log('wrote bench/results/shared-map.json and bench/results/shared-map.md')
  }
}

await main()
