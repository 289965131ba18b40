// SharedMap#dump(file) / #load(file): every value and key type and TTLs round trip (TTLs on a
// handle's test clock, never by waiting), damaged files reject with EBADDUMP and load nothing, I/O
// errors name the file, a full map stops the load and says how much it loaded, a million entries
// go out and back in with the dumping process's memory far below the data's size, and a load runs
// in one process while another uses the map.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { SharedMap } from 'lrukit'

import { test, isBun, isDeepStrictEqual } from './test.framework.mjs'

const require = createRequire(import.meta.url)
/** Moves one handle's clock forward (test support of native.js, not part of lrukit's API). */
const { debugAdvanceClock } = require('../native.js')
const child = fileURLToPath(new URL('./fixtures/dump-child.mjs', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'lrukit-dump-'))
let counter = 0
const uniqueName = () => `d${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`
const fileOf = (what) => join(dir, `${what}-${counter++}.dump`)

/**
 * A new map. Its name is unlinked at once (the handle keeps the segment) unless another process
 * must open it: then the test unlinks it with `done`.
 */
function fresh(options = { capacity: 1000 }, json = true, named = false) {
  const name = uniqueName()
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { ...options, json })
  if (!named) SharedMap.unlink(name)
  return map
}
const done = (...maps) => {
  for (const m of maps) SharedMap.unlink(m.name)
}

const cleanup = () => rmSync(dir, { recursive: true, force: true })
if (isBun) (await import('bun:test')).afterAll(cleanup)
else test.after.always(cleanup)

/** The error `promise` rejects with (fails the test when it resolves). */
async function rejection(t, promise) {
  try {
    const v = await promise
    t.fail(`expected a rejection, resolved with ${v}`)
  } catch (e) {
    return e
  }
  return null
}

/** Runs the child fixture; resolves with its JSON report. */
function runChild(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...(isBun ? [] : ['--expose-gc']), child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`child ${args.join(' ')} exited ${code}: ${err}`))
      else resolve(JSON.parse(out.trim()))
    })
  })
}

const KEYS = ['str', 42, -0.5, 7n, -(2n ** 63n), Buffer.from([0, 1, 255]), '', 'ünïcødé ✓']
const VALUES = ['text', '', 1.5, -0, Number.MAX_VALUE, 2n ** 63n - 1n, -5n, true, false, null, Buffer.from('bytes'), Buffer.alloc(0), { a: [1, { b: 'c' }] }, [1, 2, 3]]

function sameValue(t, got, want, what) {
  if (Buffer.isBuffer(want)) t.true(Buffer.isBuffer(got) && want.equals(got), what)
  else if (typeof want === 'object' && want !== null) t.true(isDeepStrictEqual(got, want), what)
  else t.true(Object.is(got, want), `${what}: ${String(got)} is not ${String(want)}`)
}

test('every key and value type round trips, and load merges into what the map holds', async (t) => {
  const a = fresh()
  let i = 0
  for (const k of KEYS) a.set(k, VALUES[i++ % VALUES.length])
  for (const v of VALUES) a.set(`v${i++}`, v)
  const file = fileOf('types')
  t.is(await a.dump(file), KEYS.length + VALUES.length)
  const b = fresh()
  b.set('kept', 'before the load')
  b.set('str', 'replaced by the load')
  t.is(await b.load(file), KEYS.length + VALUES.length)
  t.is(b.size, KEYS.length + VALUES.length + 1)
  t.is(b.get('kept'), 'before the load')
  for (const [k, v] of a.entries()) sameValue(t, b.get(k), v, `key ${String(k)}`)
  t.true(b.verify().ok)
})

test('TTLs: expired entries are not dumped, time on disk counts, no TTL stays none', async (t) => {
  const a = fresh({ capacity: 100, ttl: 60_000 })
  a.set('forever', 1, { ttl: 0 })
  a.set('default', 2) // the map's 60 s
  a.set('long', 3, { ttl: 10_000 })
  a.set('short', 4, { ttl: 3_000 })
  a.set('gone', 5, { ttl: 500 })
  debugAdvanceClock(a, 1_000) // the dump is taken 1 s later: 'gone' has expired
  const file = fileOf('ttl')
  t.is(await a.dump(file), 4)

  // loaded "5 s after the writes" (the test's real time adds a little): 'short' ran out on disk
  const b = fresh({ capacity: 100, ttl: 1 })
  debugAdvanceClock(b, 5_000)
  t.is(await b.load(file), 3)
  t.is(b.get('short'), undefined)
  t.is(b.get('long'), 3)
  debugAdvanceClock(b, 3_000) // ~8 s after the writes: 'long' has 2 s left
  t.is(b.get('long'), 3)
  debugAdvanceClock(b, 2_500) // ~10.5 s: past its deadline
  t.is(b.get('long'), undefined)
  t.is(b.get('default'), 2)
  debugAdvanceClock(b, 50_000) // ~60.5 s
  t.is(b.get('default'), undefined)
  debugAdvanceClock(b, 10 ** 9)
  t.is(b.get('forever'), 1, "no TTL stays none: the target's default TTL does not apply")

  // loaded an hour later, only the entry without a TTL is left
  const c = fresh()
  debugAdvanceClock(c, 3_600_000)
  t.is(await c.load(file), 1)
  t.deepEqual([...c.keys()], ['forever'])
})

test('damaged files reject with EBADDUMP naming the file, and load nothing', async (t) => {
  const a = fresh()
  a.set('key', 'value', { ttl: 100_000 })
  a.set(1, 2n)
  a.set(Buffer.from('b'), { json: true })
  const file = fileOf('good')
  t.is(await a.dump(file), 3)
  const good = readFileSync(file)
  const target = fresh()
  const damaged = fileOf('damaged')
  const refused = async (bytes, what) => {
    writeFileSync(damaged, bytes)
    const e = await rejection(t, target.load(damaged))
    t.is(e?.code, 'EBADDUMP', `${what}: ${e?.message}`)
    t.is(e?.constructor, Error, what)
    t.true(e?.message.includes(damaged), `${what}: the message names the file: ${e?.message}`)
    t.is(target.size, 0, `${what}: nothing loaded`)
    return e
  }
  for (let len = 0; len < good.length; len++) await refused(good.subarray(0, len), `cut at ${len}`)
  for (let i = 0; i < good.length; i++) {
    const f = Buffer.from(good)
    f[i] ^= 0x5a
    await refused(f, `byte ${i} flipped`)
  }
  t.true(/empty/.test((await refused(Buffer.alloc(0), 'empty')).message))
  t.true(/not an lrukit dump/.test((await refused(Buffer.from('{"a json file": true}\n'), 'foreign')).message))
  const v2 = Buffer.from(good)
  v2[10] = 2
  t.true(/version 2/.test((await refused(v2, 'another version')).message))
  t.true(/follow the trailer/.test((await refused(Buffer.concat([good, good]), 'two dumps joined')).message))
  t.is(await target.load(file), 3, 'the undamaged file still loads')
})

test('I/O errors reject with EIO naming the file; bad arguments and closed handles throw', async (t) => {
  const map = fresh()
  map.set('k', 'v')
  const missing = join(dir, 'missing.dump')
  let e = await rejection(t, map.load(missing))
  t.is(e?.code, 'EIO')
  t.true(e?.message.includes(missing), e?.message)
  const nowhere = join(dir, 'no-such-dir', 'x.dump')
  e = await rejection(t, map.dump(nowhere))
  t.is(e?.code, 'EIO')
  t.true(e?.message.includes(nowhere), e?.message)
  e = await rejection(t, map.load(dir))
  t.is(e?.code, 'EIO', 'a directory is not a dump file')
  for (const bad of [undefined, null, 1, {}, Buffer.from('x'), ['a']]) {
    t.throws(() => map.dump(bad), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
    t.throws(() => map.load(bad), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
  // a dump that fails at its last step (renaming over a directory) leaves no temporary file behind
  const sub = mkdtempSync(join(dir, 'sub-'))
  const target = join(sub, 'a-directory')
  mkdirSync(target)
  e = await rejection(t, map.dump(target))
  t.is(e?.code, 'EIO')
  t.true(e?.message.includes(target), e?.message)
  t.deepEqual(readdirSync(sub), ['a-directory'])
  const file = fileOf('kept')
  writeFileSync(file, 'previous contents')
  map.close()
  t.throws(() => map.dump(file), { code: 'ECLOSED' })
  t.throws(() => map.load(file), { code: 'ECLOSED' })
  t.is(readFileSync(file, 'utf8'), 'previous contents')
})

test('close() while a dump or load runs: the task finishes on its own reference', async (t) => {
  const a = fresh({ capacity: 20_000 })
  for (let i = 0; i < 10_000; i++) a.set(i, `value ${i}`)
  const file = fileOf('close')
  const dumping = a.dump(file)
  a.close()
  t.true(a.closed)
  t.is(await dumping, 10_000)
  const b = fresh({ capacity: 20_000 }, true, true)
  const name = b.name
  const loading = b.load(file)
  b.close()
  try {
    t.is(await loading, 10_000)
    const again = SharedMap.open(name)
    t.is(again.size, 10_000)
    t.is(again.get(9_999), 'value 9999')
    again.close()
  } finally {
    SharedMap.unlink(name)
  }
})

test('an entry the map cannot hold loads nothing; a full map stops the load and says how many loaded', async (t) => {
  const a = fresh({ capacity: 100 })
  for (let i = 0; i < 50; i++) a.set(i, i)
  a.set('big', 'x'.repeat(500))
  const file = fileOf('fit')
  t.is(await a.dump(file), 51)
  const small = fresh({ capacity: 100, maxValueBytes: 100 })
  let e = await rejection(t, small.load(file))
  t.is(e?.code, 'EVALUETOOLONG')
  t.is(e?.constructor, RangeError)
  t.is(small.size, 0)
  a.delete('big')
  t.is(await a.dump(file), 50)
  const full = fresh({ capacity: 10, shards: 1, eviction: 'none' })
  e = await rejection(t, full.load(file))
  t.is(e?.code, 'EFULL')
  t.true(full.size > 0 && full.size < 50)
  t.true(e?.message.includes(`${full.size} entries were loaded`), e?.message)
  t.true(full.verify().ok)
})

const MILLION = 1_000_000
const bigOptions = { capacity: 1_100_000, avgKeyBytes: 16, avgValueBytes: 24, shards: 64 }
const valueOf = (i) => {
  switch (i % 5) {
    case 0:
      return `value-${i}`
    case 1:
      return i * 0.5
    case 2:
      return BigInt(i) * -3n
    case 3:
      return i % 2 === 0
    default:
      return Buffer.from(`b${i}`)
  }
}

function checkAll(t, map, n) {
  const BATCH = 10_000
  let bad = 0
  for (let from = 0; from < n; from += BATCH) {
    const keys = Array.from({ length: Math.min(BATCH, n - from) }, (_, j) => `key:${from + j}`)
    const got = map.getMany(keys)
    for (let j = 0; j < keys.length; j++) {
      const want = valueOf(from + j)
      const v = got[j]
      const ok = Buffer.isBuffer(want) ? Buffer.isBuffer(v) && want.equals(v) : Object.is(v, want)
      if (!ok) bad++
    }
  }
  t.is(bad, 0, 'every entry came back with its value and type')
}

test.serial('a million entries are dumped and loaded in bounded memory', async (t) => {
  if (t.timeout) t.timeout(110_000)
  const a = fresh(bigOptions, false, true)
  const b = fresh(bigOptions, false, true)
  let dumped
  let loaded
  const file = fileOf('million')
  try {
    for (let i = 0; i < MILLION; i++) a.set(`key:${i}`, valueOf(i))
    t.is(a.size, MILLION)
    dumped = await runChild(['dump', a.name, file])
    loaded = await runChild(['load', b.name, file])
  } finally {
    done(a, b)
  }
  t.is(dumped.n, MILLION)
  const size = statSync(file).size
  t.is(loaded.n, MILLION)
  t.is(b.size, MILLION)
  checkAll(t, b, MILLION)
  const mib = (x) => (x / 2 ** 20).toFixed(1)
  t.log(`file ${mib(size)} MiB; dump ${dumped.ms.toFixed(0)} ms, load ${loaded.ms.toFixed(0)} ms`)
  if (dumped.baseline === null) {
    t.log('no /proc/self/status: memory not measured')
    return
  }
  const dumpGrowth = dumped.peak - dumped.baseline
  const loadGrowth = loaded.peak - loaded.baseline
  t.log(`anonymous RSS growth: dump ${mib(dumpGrowth)} MiB, load ${mib(loadGrowth)} MiB (data ${mib(size)} MiB)`)
  t.true(dumpGrowth < size / 4, `the dump took ${mib(dumpGrowth)} MiB for ${mib(size)} MiB of data`)
  t.true(loadGrowth < size / 4, `the load took ${mib(loadGrowth)} MiB for ${mib(size)} MiB of data`)
})

test.serial('a load in another process while this one uses the map', async (t) => {
  const N = 200_000
  const src = fresh({ capacity: 300_000, avgKeyBytes: 16, avgValueBytes: 24 }, false)
  for (let i = 0; i < N; i++) src.set(`key:${i}`, valueOf(i))
  const file = fileOf('concurrent')
  t.is(await src.dump(file), N)
  const map = fresh({ capacity: 300_000, avgKeyBytes: 16, avgValueBytes: 24 }, false, true)
  let finished = false
  const loading = runChild(['load', map.name, file]).finally(() => {
    finished = true
    done(map)
  })
  let writes = 0
  let seen = 0
  while (!finished) {
    for (let j = 0; j < 500; j++, writes++) {
      map.set(`mine:${writes % 20_000}`, writes)
      if (map.get(`key:${(writes * 7919) % N}`) !== undefined) seen++
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  const report = await loading
  t.is(report.n, N)
  t.log(`${writes} writes and reads here while the other process loaded ${N} entries (${report.ms.toFixed(0)} ms; ${seen} reads saw loaded entries)`)
  t.true(writes > 0)
  checkAll(t, map, N)
  for (let k = 0; k < Math.min(writes, 20_000); k++) {
    const last = writes - 1 - ((writes - 1 - k) % 20_000)
    if (map.get(`mine:${k}`) !== last) {
      t.fail(`mine:${k} is ${map.get(`mine:${k}`)}, expected ${last}`)
      break
    }
  }
  t.true(map.verify().ok)
})
