// `npm run bench` (second part): SharedMap beside lmdb-js, Redis and a per-process lru-cache,
// same workload, 1 and 2 processes, one run.
//
//   100k keys ('key:<i>'), 32-byte string values, uniform random keys
//   get-only, and 90/10 get/set
//   SharedMap (get/set) | lmdb-js (get / putSync) with noSync (no fsync: its fastest mode, and
//   like SharedMap not durable) and, for 90/10, with its default durable commits (fsync per putSync)
//   Redis via ioredis: awaited one op at a time, and pipelined 100 ops per round trip
//   lru-cache: one private cache per process (reference: not shared, nothing crosses processes)
//   + a native noop() row: the JS <-> native boundary alone
//
// Each configuration runs in fresh child processes for a fixed time; throughput is the sum over
// processes; latency percentiles come from timing every 8th operation individually (the timer's
// own ~40 ns is included). A real redis-server (Debian package `redis-server`) is started on
// 127.0.0.1 by this script. Results: bench/results/shared-map.{json,md}.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const here = fileURLToPath(new URL('.', import.meta.url))
const quick = process.argv.includes('--quick')
const KEYS = 100_000
const VALUE = 'v'.repeat(32)
const SECONDS = quick ? 0.5 : 2
const LMDB = 'lmdb-js (noSync)'
const LMDB_SYNC = 'lmdb-js (default: durable commits)'

// ---------------------------------------------------------------- child side
async function child(impl, workload, seconds, setup) {
  const { SharedMap, noop } = require('lrukit')
  const keys = Array.from({ length: KEYS }, (_, i) => 'key:' + i)
  let seed = process.pid
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const stream = Array.from({ length: 1 << 18 }, () => keys[(rand() * KEYS) | 0])
  const writes = Array.from({ length: 1 << 18 }, () => rand() < 0.1)
  let get
  let set
  let pipelined = null
  let close = () => {}
  if (impl === 'SharedMap') {
    const m = SharedMap.open(setup.name)
    get = (k) => m.get(k)
    set = (k, v) => m.set(k, v)
  } else if (impl.startsWith('lmdb-js')) {
    const { open } = require('lmdb')
    const db = open({ path: setup.path, noSync: impl.includes('noSync') })
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
  const mixed = workload === '90/10 get/set'
  const lat = []
  let ops = 0
  let i = 0
  const mask = stream.length - 1
  const deadline = performance.now() + seconds * 1000
  const isAsync = impl.startsWith('Redis')
  // warm-up
  for (let w = 0; w < 2000 && !pipelined; w++) {
    const r = get(stream[w & mask])
    if (isAsync) await r
  }
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
  close()
  lat.sort((a, b) => a - b)
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]
  process.stdout.write(JSON.stringify({ ops, seconds, p50: pct(0.5), p99: pct(0.99) }))
}

// --------------------------------------------------------------- parent side
function freePort() {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function startRedis() {
  const check = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (check.error) throw new Error('redis-server not found: apt-get install redis-server (Debian package)')
  const port = await freePort()
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  const Redis = require('ioredis')
  for (let i = 0; i < 100; i++) {
    try {
      const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
      await r.connect()
      await r.ping()
      return { proc, port, client: r }
    } catch {
      await new Promise((res) => setTimeout(res, 50))
    }
  }
  proc.kill()
  throw new Error('redis-server did not start')
}

function runChildren(n, impl, workload, setup) {
  const script = fileURLToPath(import.meta.url)
  return Promise.all(
    Array.from({ length: n }, () => {
      return new Promise((resolve, reject) => {
        const p = spawn(process.execPath, [script, '--child', impl, workload, String(SECONDS), JSON.stringify(setup)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
        let out = ''
        p.stdout.on('data', (d) => (out += d))
        p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${impl} child exited ${code}`))))
      })
    }),
  )
}

async function main() {
  if (process.argv[2] === '--child') {
    const [, , , impl, workload, seconds, setup] = process.argv
    return child(impl, workload, Number(seconds), JSON.parse(setup))
  }
  const { buildIfNeeded } = await import('../scripts/build-if-needed.mjs')
  buildIfNeeded()
  const { SharedMap } = require('lrukit')
  const { open } = require('lmdb')
  const keys = Array.from({ length: KEYS }, (_, i) => 'key:' + i)

  const name = `bench${process.pid}`
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { capacity: KEYS * 2, maxKeyBytes: 16, maxValueBytes: 32 })
  for (const k of keys) map.set(k, VALUE)
  const dir = mkdtempSync(join(tmpdir(), 'lrukit-lmdb-'))
  const db = open({ path: dir, noSync: true })
  await db.transaction(() => {
    for (const k of keys) db.put(k, VALUE)
  })
  await db.close()
  const redis = await startRedis()
  for (let b = 0; b < KEYS; b += 1000) {
    const p = redis.client.pipeline()
    for (const k of keys.slice(b, b + 1000)) p.set(k, VALUE)
    await p.exec()
  }
  const setup = { name, path: dir, port: redis.port }

  const impls = ['SharedMap', LMDB, LMDB_SYNC, 'Redis (ioredis, awaited)', 'Redis (ioredis, pipelined x100)', 'lru-cache', 'native noop()']
  const workloads = ['get-only', '90/10 get/set']
  const rows = []
  try {
    for (const workload of workloads) {
      for (const procs of [1, 2]) {
        for (const impl of impls) {
          // Durability only matters to writes.
          if (impl === LMDB_SYNC && workload === 'get-only') continue
          const res = await runChildren(procs, impl, workload, setup)
          const opsPerSec = res.reduce((a, r) => a + r.ops / r.seconds, 0)
          const p50 = Math.max(...res.map((r) => r.p50))
          const p99 = Math.max(...res.map((r) => r.p99))
          rows.push({ workload, procs, impl, opsPerSec, p50, p99 })
          console.log(`${workload.padEnd(14)} ${procs}p ${impl.padEnd(32)} ${Math.round(opsPerSec).toLocaleString('en-US').padStart(12)} ops/s  p50 ${Math.round(p50)} ns  p99 ${Math.round(p99)} ns`)
        }
      }
    }
  } finally {
    redis.client.disconnect()
    redis.proc.kill()
    SharedMap.unlink(name)
    rmSync(dir, { recursive: true, force: true })
  }

  const find = (w, p, i) => rows.find((r) => r.workload === w && r.procs === p && r.impl === i)
  const lines = [
    `## SharedMap benchmark (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})`,
    '',
    `${KEYS.toLocaleString('en-US')} keys, 32-byte values, uniform keys, ${SECONDS} s per configuration. p50/p99: per-operation latency (every 8th op timed; pipelined Redis: per op within a batch).`,
    '',
    '| workload | processes | implementation | ops/s (all processes) | p50 | p99 | SharedMap is |',
    '|---|---:|---|---:|---:|---:|---:|',
  ]
  for (const r of rows) {
    const shm = find(r.workload, r.procs, 'SharedMap')
    const ratio = r.impl === 'SharedMap' ? '' : `${(shm.opsPerSec / r.opsPerSec).toFixed(1)}× this`
    lines.push(
      `| ${r.workload} | ${r.procs} | ${r.impl} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${(r.p50 / 1000).toFixed(2)} µs | ${(r.p99 / 1000).toFixed(2)} µs | ${ratio} |`,
    )
  }
  const scale = (w) => (find(w, 2, 'SharedMap').opsPerSec / find(w, 1, 'SharedMap').opsPerSec).toFixed(2)
  lines.push('', `SharedMap scaling, 2 processes vs 1: get-only ${scale('get-only')}×, 90/10 ${scale('90/10 get/set')}×.`, '')
  const md = lines.join('\n')
  console.log('\n' + md)
  if (!quick) {
    mkdirSync(`${here}results`, { recursive: true })
    writeFileSync(`${here}results/shared-map.json`, JSON.stringify({ node: process.version, date: new Date().toISOString(), rows }, null, 2))
    writeFileSync(`${here}results/shared-map.md`, md)
    console.log('wrote bench/results/shared-map.json and bench/results/shared-map.md')
  }
}

await main()
