// `npm run demo`: LruCache doing its job on real data.
//
// The job: memoise an expensive function (SHA-256 of a file's contents) over the
// files of this checkout's node_modules, with a skewed access pattern (a few files
// are asked for often, most rarely: zipf), in a cache far smaller than the file set.
// Then the mrumap job: per-key state with O(1) pruning of the oldest entries by
// their insert timestamps (popLru/peekLru), no O(N) sweep. Then SharedMap: the
// same memoisation done by three separate processes sharing one cache in named
// shared memory.
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { buildIfNeeded, ensureDependencies } from '../scripts/build-if-needed.mjs'

ensureDependencies()
buildIfNeeded()
const { LruCache, SharedMap } = createRequire(import.meta.url)('lrukit')
const root = fileURLToPath(new URL('..', import.meta.url))

function listFiles(dir, out, limit) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (out.length >= limit) return out
    const p = join(dir, e.name)
    if (e.isDirectory()) listFiles(p, out, limit)
    else if (e.isFile() && statSync(p).size < 256 * 1024) out.push(p)
  }
  return out
}

const files = listFiles(join(root, 'node_modules'), [], 5000)
console.log(`real data: ${files.length} files under node_modules`)

// zipf(1.0) access stream over the files
let seed = 12345
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
const weights = files.map((_, i) => 1 / (i + 1))
const total = weights.reduce((a, b) => a + b, 0)
const cdf = []
weights.reduce((acc, w, i) => (cdf[i] = acc + w), 0)
const pick = () => {
  const u = rand() * total
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (cdf[mid] < u) lo = mid + 1
    else hi = mid
  }
  return files[lo]
}

const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex')

const cache = new LruCache({ capacity: 200 })
const requests = 20_000
let hits = 0
let hashed = 0
const t0 = process.hrtime.bigint()
for (let i = 0; i < requests; i++) {
  const path = pick()
  let digest = cache.get(path)
  if (digest === undefined) {
    digest = sha(path)
    hashed++
    cache.set(path, digest)
  } else hits++
}
const cachedMs = Number(process.hrtime.bigint() - t0) / 1e6

const t1 = process.hrtime.bigint()
for (let i = 0; i < 2000; i++) sha(pick())
const uncachedMs = (Number(process.hrtime.bigint() - t1) / 1e6) * (requests / 2000)

console.log(`\n1) memoising sha256(file) for ${requests.toLocaleString()} requests, capacity ${cache.capacity}`)
console.log(`   hits ${hits.toLocaleString()} (${((100 * hits) / requests).toFixed(1)}%), files hashed ${hashed.toLocaleString()}`)
console.log(`   size ${cache.size} (never above capacity), most recent: ${[...cache.keys()].slice(0, 2).map((p) => p.slice(root.length)).join(', ')}`)
console.log(`   ${cachedMs.toFixed(0)} ms with the cache vs ~${uncachedMs.toFixed(0)} ms hashing every request`)

// 2) per-flow state, pruned by insert timestamp in O(1) per entry
const flows = new LruCache({ capacity: Infinity })
const start = 1_700_000_000_000
for (let i = 0; i < 10_000; i++) {
  const path = pick()
  const state = flows.get(path) ?? { packets: 0 }
  state.packets++
  // re-setting updates in place and stamps "last seen": LRU order == timestamp order
  flows.set(path, state, { timestamp: start + i })
}
const cutoff = start + 5_000
let pruned = 0
while ((flows.peekLru()?.timestamp ?? Infinity) < cutoff) {
  flows.popLru()
  pruned++
}
const oldest = flows.peekLru()
console.log(`\n2) per-flow state: ${(flows.size + pruned).toLocaleString()} flows seen`)
console.log(`   pruned ${pruned.toLocaleString()} flows idle since before tick 5000 with popLru(), no sweep`)
console.log(`   ${flows.size.toLocaleString()} remain; the oldest now has timestamp tick ${oldest ? oldest.timestamp - start : '-'}`)

// 3) one cache for many processes
const name = `demo${process.pid}`
const map = SharedMap.create(name, { capacity: 2000, maxKeyBytes: 512, maxValueBytes: 64 })
const dir = mkdtempSync(join(tmpdir(), 'lrukit-demo-'))
const list = join(dir, 'files.json')
writeFileSync(list, JSON.stringify(files))
const worker = fileURLToPath(new URL('./shared-worker.mjs', import.meta.url))
const procs = [1, 2, 3].map(
  (id) =>
    new Promise((resolve, reject) =>
      execFile(process.execPath, [worker, name, String(id), list], (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout)),
      ),
    ),
)
const results = await Promise.all(procs)
const stats = map.stats()
console.log(`\n3) SharedMap "${name}": ${results.length} processes memoising sha256 through one shared cache`)
for (const r of results) console.log(`   pid ${r.pid}: ${r.hits} hits, ${r.hashed} files hashed itself`)
const hashedTotal = results.reduce((a, r) => a + r.hashed, 0)
console.log(`   shared counters: hits ${map.get('hits')}, misses ${map.get('misses')} (incr is atomic across processes)`)
console.log(`   ${map.size} entries in ${(stats.memoryBytes / 2 ** 20).toFixed(1)} MiB of shared memory; ${hashedTotal} hashes computed for ${results.length * 3000} requests`)
console.log(`   verify(): ${JSON.stringify(map.verify())}`)
map.close()
SharedMap.unlink(name)
rmSync(dir, { recursive: true, force: true })

