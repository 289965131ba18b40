import { spawn, execFileSync } from 'node:child_process'
import { openSync, readSync, writeSync, closeSync, statSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

import { SharedMap } from 'lrukit'

import { test, sleep, isBun, isDeepStrictEqual } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const child = fileURLToPath(new URL('./fixtures/shm-child.mjs', import.meta.url))
let counter = 0
/** A map name unique to this test process (names are at most 24 characters). */
const uniqueName = () => `t${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`

/** Tests that read or write a segment through /dev/shm: registered as skipped elsewhere. */
const DEV_SHM = process.platform === 'linux'
const NO_DEV_SHM = 'it goes through /dev/shm, which only Linux has'
// The framework exposes no skip under Bun: take bun:test's own there.
const bunTest = isBun ? (await import('bun:test')).test : null

/** `test` when `cond` holds, else a registration that shows the test as skipped, naming `reason`. */
function testIf(cond, reason) {
  if (cond) return test
  const title = (t) => `${t} (skipped: ${reason})`
  const skip = (t, fn) => (bunTest ? bunTest.skip : test.skip)(title(t), fn)
  skip.serial = (t, fn) => (bunTest ? bunTest.skip : test.serial.skip)(title(t), fn)
  return skip
}

function fresh(options = { capacity: 1000 }) {
  const name = uniqueName()
  SharedMap.unlink(name)
  return SharedMap.create(name, options)
}

/** Runs the child fixture with `runtime` (a node or bun binary); resolves with its stdout lines. */
function run(runtime, args, { timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(runtime, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout)
    // 'close', not 'exit': output can still be in flight when the process exits
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout.trim().split('\n'))
      else reject(new Error(`child ${args.join(' ')} exited ${code ?? signal}: ${stderr}`))
    })
  })
}

const self = process.execPath
function otherRuntime() {
  const candidates = isBun
    ? [process.env.LRUKIT_NODE, 'node']
    : [process.env.LRUKIT_BUN, fileURLToPath(new URL('../node_modules/bun/bin/bun.exe', import.meta.url))]
  for (const bin of candidates.filter(Boolean)) {
    try {
      execFileSync(bin, ['--version'], { stdio: 'ignore' })
      return bin
    } catch {
      // not runnable here; try the next candidate
    }
  }
  return null
}

test('create / open / openOrCreate / unlink and their errors', (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' })
  const a = SharedMap.create(name, { capacity: 100 })
  t.is(a.name, name)
  t.throws(() => SharedMap.create(name, { capacity: 100 }), { code: 'EEXIST' })
  const b = SharedMap.open(name)
  const c = SharedMap.openOrCreate(name, { capacity: 5 })
  a.set('k', 'v')
  t.is(b.get('k'), 'v')
  t.is(c.get('k'), 'v')
  t.is(c.stats().capacity >= 100, true, 'openOrCreate of an existing map keeps its options')
  t.true(SharedMap.unlink(name))
  t.false(SharedMap.unlink(name))
  t.is(a.get('k'), 'v', 'open handles keep working after unlink')
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' })
  a.close()
  a.close()
  t.true(a.closed)
  t.throws(() => a.get('k'), { code: 'ECLOSED' })
  t.throws(() => new SharedMap(), { instanceOf: Error })
})

test('names and options are validated with clear errors', (t) => {
  for (const bad of ['', 'a/b', 'x'.repeat(25), 'sp ace', 'nul\0byte']) {
    t.throws(() => SharedMap.create(bad, { capacity: 10 }), { instanceOf: RangeError, code: 'ENAME' })
    t.throws(() => SharedMap.open(bad), { instanceOf: RangeError, code: 'ENAME' })
    t.throws(() => SharedMap.unlink(bad), { instanceOf: RangeError, code: 'ENAME' })
  }
  const name = uniqueName()
  t.throws(() => SharedMap.create(name, {}), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  t.throws(() => SharedMap.create(name, { capacity: -1 }), { instanceOf: RangeError })
  t.throws(() => SharedMap.create(name, { capacity: 10, eviction: 'fifo' }), { instanceOf: RangeError })
  t.throws(() => SharedMap.create(name, { capacity: 10, mode: 0o1000 }), { instanceOf: RangeError })
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' }, 'failed creates leave nothing behind')
})

test('missing, null or non-object options and wrong argument types are TypeErrors with a code', (t) => {
  const arg = { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' }
  const name = uniqueName()
  for (const bad of [undefined, null, 5, 'capacity', true, 1n, Symbol('o'), () => {}]) {
    t.throws(() => SharedMap.create(name, bad), arg)
    t.throws(() => SharedMap.openOrCreate(name, bad), arg)
    t.throws(() => SharedMap.calcRequiredMemorySize(bad), arg)
  }
  t.throws(() => SharedMap.create(name), arg)
  t.throws(() => SharedMap.openOrCreate(name), arg)
  t.throws(() => SharedMap.calcRequiredMemorySize(), arg)
  for (const bad of [5, 'json', true, 1n]) t.throws(() => SharedMap.open(name, bad), arg)
  t.throws(() => SharedMap.open(name, null), { code: 'ENOENT' }, 'null options of open mean none')
  for (const bad of [undefined, 5, null, {}, Buffer.from('n')]) {
    t.throws(() => SharedMap.create(bad, { capacity: 10 }), arg)
    t.throws(() => SharedMap.open(bad), arg)
    t.throws(() => SharedMap.unlink(bad), arg)
  }
  const cap = { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' }
  t.throws(() => SharedMap.create(name, { capacity: '10' }), cap)
  t.throws(() => SharedMap.create(name, { memorySize: '10' }), cap)
  t.throws(() => SharedMap.calcRequiredMemorySize({}), cap)
  t.throws(() => SharedMap.create(name, {}), cap)
  t.throws(() => SharedMap.create(name, { capacity: 0 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  t.throws(() => SharedMap.calcRequiredMemorySize({ capacity: '10' }), cap)
  t.throws(() => SharedMap.create(name, { capacity: 10, ttl: '1' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TTL' })
  t.throws(() => SharedMap.create(name, { capacity: -1 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  for (const field of ['maxKeyBytes', 'maxValueBytes', 'eviction', 'mode', 'shards', 'json']) {
    t.throws(() => SharedMap.create(name, { capacity: 10, [field]: {} }), arg, field)
  }
  t.throws(() => new SharedMap(), arg)
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' }, 'refused creates left nothing behind')
  const m = fresh({ capacity: 10 })
  t.throws(() => m.evictOlderThan('0'), arg)
  t.throws(() => m.evictOlderThan(), arg)
  t.throws(() => m.evictOlderThan(0, '1'), arg)
  t.throws(() => m.evictOlderThan(NaN), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.is(m.evictOlderThan(0, null), 0)
  const trap = new Error('from a getter')
  t.is(
    t.throws(() => SharedMap.create(name, { get capacity() { throw trap } })),
    trap,
    'what a getter throws propagates unchanged',
  )
  SharedMap.unlink(m.name)
})

test('lockTimeout: validated with a code, accepted on create, open and openOrCreate', (t) => {
  const name = uniqueName()
  const type = { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' }
  const range = { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' }
  for (const bad of ['5', 5n, {}, true]) {
    t.throws(() => SharedMap.create(name, { capacity: 10, lockTimeout: bad }), type)
    t.throws(() => SharedMap.openOrCreate(name, { capacity: 10, lockTimeout: bad }), type)
  }
  for (const bad of [0, -1, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53]) {
    t.throws(() => SharedMap.create(name, { capacity: 10, lockTimeout: bad }), range)
    t.throws(() => SharedMap.openOrCreate(name, { capacity: 10, lockTimeout: bad }), range)
  }
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' }, 'a bad lockTimeout creates nothing')
  const a = SharedMap.create(name, { capacity: 10, lockTimeout: 1 })
  const b = SharedMap.open(name, { lockTimeout: 2 ** 31 - 1 })
  const c = SharedMap.openOrCreate(name, { capacity: 10, lockTimeout: 250 })
  const d = SharedMap.open(name, { lockTimeout: undefined, json: true })
  t.throws(() => SharedMap.open(name, { lockTimeout: '1' }), type)
  t.throws(() => SharedMap.open(name, { lockTimeout: 0 }), range)
  a.set('k', 1)
  t.is(b.incr('k'), 2)
  t.is(c.incr('k'), 3)
  t.is(d.get('k'), 3)
  SharedMap.unlink(name)
})

test('typed values round-trip with their own type', (t) => {
  const m = fresh({ capacity: 100, maxValueBytes: 64 })
  const values = ['text', '', 'ünïcödé ✓', 0, -1.5, 2 ** 53, NaN, 10n, -(2n ** 63n), true, false, null]
  values.forEach((v, i) => t.true(m.set(`v${i}`, v)))
  values.forEach((v, i) => t.true(Object.is(m.get(`v${i}`), v), `value #${i} (${String(v)})`))
  m.set('buf', Buffer.from([1, 2, 3]))
  t.deepEqual([...m.get('buf')], [1, 2, 3])
  t.true(Buffer.isBuffer(m.get('buf')))
  m.set('u8', new Uint8Array([9]))
  t.deepEqual([...m.get('u8')], [9])
  t.is(m.get('missing'), undefined)
  t.is(m.peek('v0'), 'text')
  t.throws(() => m.set('o', { a: 1 }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
  t.throws(() => m.set('u', undefined), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
  t.throws(() => m.set('s', Symbol('x')), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
  t.throws(() => m.set('big', 2n ** 64n), { instanceOf: RangeError, code: 'ERANGE' })
  t.throws(() => m.set('long', 'x'.repeat(65)), { instanceOf: RangeError, code: 'EVALUETOOLONG' })
  t.throws(() => m.set('k'.repeat(300), 1), { instanceOf: RangeError, code: 'EKEYTOOLONG' })
  t.throws(() => m.set({}, 1), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
  t.is(m.get('v0'), 'text', 'rejected writes lost nothing')
  const j = SharedMap.open(m.name, { json: true })
  const cycle = {}
  cycle.self = cycle
  for (const bad of [{ n: 1n }, cycle]) {
    const e = t.throws(() => j.set('v0', bad), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
    t.true(e.cause instanceof TypeError, 'JSON.stringify\'s own error is the cause')
  }
  const trap = new Error('from toJSON')
  t.is(t.throws(() => j.set('v0', { toJSON: () => { throw trap } })), trap, 'what toJSON throws propagates unchanged')
  t.is(m.get('v0'), 'text', 'values JSON refused lost nothing')
  j.set('obj', { a: [1, 'two'], b: null })
  t.deepEqual(j.get('obj'), { a: [1, 'two'], b: null })
  t.deepEqual(m.get('obj'), { a: [1, 'two'], b: null }, 'JSON values read back as objects on any handle')
  SharedMap.unlink(m.name)
})

test('maxKeyBytes counts the key\'s own bytes: a key of exactly the limit is stored, one byte more is a RangeError EKEYTOOLONG naming both', (t) => {
  const tooLong = (limit) => ({
    instanceOf: RangeError,
    code: 'EKEYTOOLONG',
    message: new RegExp(`key of ${limit + 1} bytes, the map allows ${limit}$`),
  })
  for (const [options, limit] of [
    [{ capacity: 100 }, 256], // the default
    [{ capacity: 100, maxKeyBytes: 16 }, 16],
    [{ capacity: 100, maxKeyBytes: 0 }, 0],
  ]) {
    const m = fresh(options)
    const keys = [
      ['string', (n) => 'k'.repeat(n)],
      ['UTF-8 string', (n) => 'é'.repeat(n >> 1) + 'k'.repeat(n & 1)],
      ['Buffer', (n) => Buffer.alloc(n, 7)],
      ['Uint8Array', (n) => new Uint8Array(n).fill(9)],
    ]
    for (const [kind, key] of keys) {
      const what = `${kind} key, maxKeyBytes ${limit}`
      t.is(Buffer.byteLength(key(limit)), limit)
      t.true(m.set(key(limit), kind), what)
      t.is(m.get(key(limit)), kind, what)
      t.true(m.delete(key(limit)), what)
      t.true(m.add(key(limit), 1), what)
      t.is(m.incr(key(limit)), 2, what)
      t.throws(() => m.set(key(limit + 1), 1), tooLong(limit), what)
      t.throws(() => m.add(key(limit + 1), 1), tooLong(limit), what)
      t.throws(() => m.incr(key(limit + 1)), tooLong(limit), what)
      t.is(m.get(key(limit + 1)), undefined, `${what}: reading a longer key is a miss`)
      t.false(m.has(key(limit + 1)), what)
      t.false(m.delete(key(limit + 1)), what)
    }
    t.true(m.verify().ok)
    SharedMap.unlink(m.name)
  }
  const name = uniqueName()
  for (const maxKeyBytes of [-1, 0.5, 65535]) {
    t.throws(() => SharedMap.create(name, { capacity: 10, maxKeyBytes }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
  const widest = fresh({ memorySize: 2 ** 20, maxKeyBytes: 65534 })
  t.true(widest.set('w'.repeat(65534), 1), 'the widest limit stores a key of 65534 bytes')
  t.throws(() => widest.set('w'.repeat(65535), 1), tooLong(65534))
  SharedMap.unlink(widest.name)
})

test('getMany: values in order with their types, misses as undefined, stats as for get', (t) => {
  const m = fresh({ capacity: 1000, maxKeyBytes: 32, maxValueBytes: 64 })
  for (let i = 0; i < 200; i++) m.set(`k${i}`, i % 2 ? i : `v${i}`)
  m.set(7n, 7n)
  m.set(Buffer.from('b'), Buffer.from('bytes'))
  m.set(3, true)
  m.set('n', null)
  m.set('short', 1, { ttl: 1 })
  const keys = [...Array.from({ length: 250 }, (_, i) => `k${i}`), 7n, Buffer.from('b'), 3, 'n', 'x'.repeat(100)]
  const before = m.stats()
  const got = m.getMany(keys)
  t.true(Array.isArray(got))
  t.is(got.length, keys.length)
  for (let i = 0; i < 250; i++) t.is(got[i], i >= 200 ? undefined : i % 2 ? i : `v${i}`)
  t.is(got[250], 7n)
  t.deepEqual([...got[251]], [...Buffer.from('bytes')])
  t.is(got[252], true)
  t.is(got[253], null)
  t.is(got[254], undefined, 'a key longer than maxKeyBytes is a miss')
  const after = m.stats()
  t.is(after.hits - before.hits, 204)
  t.is(after.misses - before.misses, 51)
  t.deepEqual(m.getMany([]), [])
  t.throws(() => m.getMany('k1'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => m.getMany(['k1', {}]), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
  const { name } = m
  m.close()
  t.throws(() => m.getMany(['k1']), { code: 'ECLOSED' })
  SharedMap.unlink(name)
})

test('add, incr, compareAndSet, delete, clear, keys, entries, stats', (t) => {
  const m = fresh({ capacity: 100 })
  t.true(m.add('a', 1))
  t.false(m.add('a', 2))
  t.is(m.get('a'), 1)
  t.is(m.incr('n'), 1)
  t.is(m.incr('n', 41), 42)
  t.is(m.incr('m', 1, { initial: 10 }), 11)
  t.is(m.incr('n', -2.5), 39.5)
  m.set('b', 5n)
  t.is(m.incr('b', 3), 8n, 'bigint counters stay bigints')
  m.set('s', 'str')
  t.throws(() => m.incr('s'), { instanceOf: TypeError, code: 'ETYPE' })
  t.true(m.compareAndSet('a', 1, 'one'))
  t.false(m.compareAndSet('a', 1, 'uno'))
  t.is(m.get('a'), 'one')
  t.true(m.delete('a'))
  t.false(m.delete('a'))
  t.deepEqual([...m.keys()].sort(), ['b', 'm', 'n', 's'])
  t.deepEqual(new Map(m.entries()).get('m'), 11)
  t.deepEqual(new Map(m).get('b'), 8n)
  const s = m.stats()
  t.is(s.size, 4)
  t.true(s.memoryBytes > 0 && s.usedBytes > 0 && s.freeBytes > 0)
  t.true(s.sets >= 5)
  m.clear()
  t.is(m.size, 0)
  t.deepEqual(m.verify(), { ok: true, problems: [] })
  SharedMap.unlink(m.name)
})

test('ttl: expired entries are never returned', async (t) => {
  const m = fresh({ capacity: 100, ttl: 30 })
  m.set('default', 1)
  m.set('long', 2, { ttl: 60_000 })
  m.set('short', 3, { ttl: 1 })
  await sleep(80)
  t.is(m.get('default'), undefined)
  t.false(m.has('short'))
  t.is(m.get('long'), 2)
  t.true(m.add('short', 'again'), 'an expired key counts as absent')
  t.true(m.stats().expirations >= 1)
  SharedMap.unlink(m.name)
})

test("eviction 'none' refuses writes when full and loses nothing", (t) => {
  const m = fresh({ capacity: 64, eviction: 'none' })
  const stored = []
  let refused = 0
  for (let i = 0; i < 400; i++) {
    try {
      m.set(`k${i}`, i)
      stored.push(i)
    } catch (e) {
      t.is(e.code, 'EFULL')
      refused++
    }
  }
  t.true(refused > 0, 'some writes were refused')
  t.true(stored.length >= 64 && stored.length <= m.stats().capacity + m.stats().shards)
  for (const i of stored) if (m.get(`k${i}`) !== i) return t.fail(`lost k${i}`)
  t.true(m.set('k0', 'update of an existing key still works'))
  t.true(m.verify().ok)
  SharedMap.unlink(m.name)
})

test("eviction 'lru' keeps the map within capacity and keeps recently used keys", (t) => {
  const m = fresh({ capacity: 256, eviction: 'lru' })
  for (let i = 0; i < 2000; i++) m.set(`k${i}`, i)
  const { size, capacity, evictions } = m.stats()
  t.true(size <= capacity + m.stats().shards, `size ${size} within capacity ${capacity}`)
  t.true(evictions > 0)
  t.is(m.get('k1999'), 1999, 'the newest entry survives')
  t.is(m.get('k0'), undefined, 'the oldest entry was evicted')
  t.true(m.verify().ok)
  SharedMap.unlink(m.name)
})

test('evictOlderThan evicts by last access, bounded by maxEvictions', async (t) => {
  const m = fresh({ capacity: 100 })
  for (let i = 0; i < 10; i++) m.set(`old${i}`, i)
  await sleep(20)
  const cutoff = Date.now()
  await sleep(5)
  m.set('new', 1)
  t.is(m.evictOlderThan(cutoff, 3), 3)
  t.is(m.evictOlderThan(cutoff), 7)
  t.is(m.size, 1)
  t.is(m.get('new'), 1)
  SharedMap.unlink(m.name)
})

test('calcRequiredMemorySize is what create allocates, for every way of sizing', (t) => {
  for (const options of [
    { capacity: 1000 },
    { capacity: 1000, maxKeyBytes: 32, avgValueBytes: 32 },
    { capacity: 5000, eviction: 'none', maxValueBytes: 4096 },
    { memorySize: 8 * 2 ** 20 },
    { memorySize: 8 * 2 ** 20, capacity: 100 },
  ]) {
    const need = SharedMap.calcRequiredMemorySize(options)
    const m = fresh(options)
    t.is(m.stats().memoryBytes, need, JSON.stringify(options))
    if (process.platform === 'linux') t.is(statSync(`/dev/shm/lk_${m.name}`).size, need)
    if (options.memorySize) t.true(need <= options.memorySize && need > options.memorySize * 0.99)
    SharedMap.unlink(m.name)
  }
  t.throws(() => SharedMap.calcRequiredMemorySize({ capacity: 0 }), { instanceOf: RangeError })
  t.throws(() => SharedMap.calcRequiredMemorySize({ memorySize: 100 }), { instanceOf: RangeError, code: 'EINVAL' })
})

test('values of any size share one memory budget', (t) => {
  const m = fresh({ memorySize: 64 * 2 ** 20 })
  const big = Buffer.alloc(2 ** 20, 7)
  m.set('big', big)
  t.deepEqual(m.get('big'), big, 'a 1 MiB value fits a 64 MiB map with default options')
  const small = 'x'.repeat(200)
  for (let i = 0; i < 1000; i++) m.set('s' + i, small)
  const s = m.stats()
  t.is(s.size, 1001)
  // Key + value bytes: each key has one type-tag byte.
  const keyBytes = 1001 + 3 + [...Array(1000).keys()].reduce((a, i) => a + ('s' + i).length, 0)
  t.is(s.allocatedBytes, keyBytes + big.length + 1000 * 200)
  t.true(s.usedBytes >= s.liveRecordBytes && s.liveRecordBytes > s.allocatedBytes)
  t.is(s.freeBytes, s.ringBytes - s.usedBytes)
  t.deepEqual(s.evictionsByReason, { room: 0, capacity: 0, manual: 0 })
  // Replacing the big value by a small one frees its room for others.
  m.set('big', 'now small')
  t.is(m.stats().allocatedBytes, keyBytes + 'now small'.length + 1000 * 200)
  // An entry larger than half of its shard's share is refused by name, and nothing is lost.
  const tiny = fresh({ capacity: 10 })
  tiny.set('k', 'v')
  t.throws(() => tiny.set('huge', Buffer.alloc(64 * 1024)), { instanceOf: RangeError, code: 'EVALUETOOLONG', message: /half of a shard/ })
  t.is(tiny.get('k'), 'v')
  t.true(m.verify().ok && tiny.verify().ok)
  SharedMap.unlink(m.name)
  SharedMap.unlink(tiny.name)
})

test('with lru eviction, a map full of mixed sizes evicts for room and keeps its newest entries', (t) => {
  const m = fresh({ memorySize: 2 * 2 ** 20, shards: 1 })
  const value = (i) => (i % 10 === 0 ? 'L'.repeat(8192) : 's'.repeat(200))
  let i = 0
  while (m.stats().evictions === 0) m.set('k' + i, value(i++))
  for (let j = 0; j < 2000; j++, i++) m.set('k' + i, value(i))
  const s = m.stats()
  t.true(s.evictionsByReason.room > 0)
  t.is(s.evictionsByReason.capacity, 0)
  // The newest entries are all there, with their values.
  for (let j = i - 50; j < i; j++) t.is(m.get('k' + j), value(j))
  // What stays fills the memory: payload over 70% of the segment.
  t.true((s.allocatedBytes - s.size) / s.memoryBytes > 0.7, JSON.stringify(s))
  t.true(m.verify().ok)
  SharedMap.unlink(m.name)
})

testIf(DEV_SHM, NO_DEV_SHM)('segments are created 0600 unless mode says otherwise', (t) => {
  const a = fresh({ capacity: 10 })
  const b = fresh({ capacity: 10, mode: 0o644 })
  t.is(statSync(`/dev/shm/lk_${a.name}`).mode & 0o777, 0o600)
  t.is(statSync(`/dev/shm/lk_${b.name}`).mode & 0o777, 0o644)
  SharedMap.unlink(a.name)
  SharedMap.unlink(b.name)
})

testIf(DEV_SHM, NO_DEV_SHM)('open refuses a segment others may write unless its mode is accepted (EPERM), and names an uninitialised one (EUNINIT)', (t) => {
  const g = fresh({ capacity: 10, mode: 0o660 })
  g.set('k', 1)
  for (const open of [() => SharedMap.open(g.name), () => SharedMap.openOrCreate(g.name, { capacity: 10 })]) {
    const e = t.throws(open)
    t.is(e.code, 'EPERM')
    t.true(e.message.includes('660') && e.message.includes(g.name), e.message)
  }
  t.is(SharedMap.open(g.name, { mode: 0o660 }).get('k'), 1)
  t.throws(() => SharedMap.open(g.name, { mode: '660' }), { instanceOf: TypeError })
  t.throws(() => SharedMap.open(g.name, { mode: 0o1000 }), { instanceOf: RangeError })
  SharedMap.unlink(g.name)

  // What a creator killed before the map was ready leaves: a zero-filled segment.
  const name = `uninit${process.pid}${isBun ? 'b' : 'n'}`
  SharedMap.unlink(name)
  writeFileSync(`/dev/shm/lk_${name}`, Buffer.alloc(64 * 1024), { mode: 0o600 })
  const e = t.throws(() => SharedMap.open(name))
  t.is(e.code, 'EUNINIT')
  const started = process.hrtime.bigint()
  const m = SharedMap.openOrCreate(name, { capacity: 10 })
  t.true(Number(process.hrtime.bigint() - started) / 1e6 < 3000, 'taken over in well under 3 s')
  m.set('k', 'v')
  t.is(SharedMap.open(name).get('k'), 'v')
  SharedMap.unlink(name)
})

testIf(DEV_SHM, NO_DEV_SHM)('a damaged header is refused by name with EINCOMPAT', (t) => {
  const m = fresh({ capacity: 10 })
  const fd = openSync(`/dev/shm/lk_${m.name}`, 'r+')
  writeSync(fd, Buffer.from('NOTLRUKT'), 0, 8, 0)
  closeSync(fd)
  const err = t.throws(() => SharedMap.open(m.name), { code: 'EINCOMPAT' })
  t.true(err.message.includes(m.name))
  SharedMap.unlink(m.name)
})

test.serial('4 child processes doing random operations leave a consistent map', async (t) => {
  const m = fresh({ capacity: 200, maxValueBytes: 64 })
  const results = await Promise.all([1, 2, 3, 4].map((seed) => run(self, ['random', m.name, String(seed), '5000'])))
  t.deepEqual(results.map((r) => r.at(-1)), ['done', 'done', 'done', 'done'])
  t.deepEqual(m.verify(), { ok: true, problems: [] })
  t.true(m.size <= m.stats().capacity + m.stats().shards)
  SharedMap.unlink(m.name)
})

test.serial('4 processes x 20k incr give exact totals', async (t) => {
  const m = fresh({ capacity: 100 })
  await Promise.all([1, 2, 3, 4].map(() => run(self, ['incr', m.name, '20000', '4'])))
  t.deepEqual([0, 1, 2, 3].map((i) => m.get(`counter${i}`)), [20000, 20000, 20000, 20000])
  SharedMap.unlink(m.name)
})

test.serial('Bun and Node share one map', async (t) => {
  const other = otherRuntime()
  if (!other) return t.fail('the other runtime (bun/node) is not available')
  const m = fresh({ capacity: 100 })
  m.set('from-parent:str', 'hi ✓')
  m.set('from-parent:num', 1.25)
  m.set('from-parent:big', -(2n ** 50n))
  m.set('from-parent:buf', Buffer.from([7, 8]))
  m.incr('shared-counter', 1)
  const [line] = await run(other, ['interop', m.name])
  const seen = JSON.parse(line)
  t.is(seen.runtime, isBun ? 'node' : 'bun')
  t.deepEqual(seen, { runtime: seen.runtime, str: 'hi ✓', num: 1.25, big: String(-(2n ** 50n)), buf: [7, 8] })
  t.is(m.get('from-child:str'), `hello from ${seen.runtime}`)
  t.is(m.get('from-child:big'), 2n ** 40n)
  t.is(m.get('shared-counter'), 6)
  SharedMap.unlink(m.name)
})

test('a worker_thread opens the same map by name', async (t) => {
  const m = fresh({ capacity: 10 })
  m.set('main', 1)
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { SharedMap } = require(${JSON.stringify(require.resolve('lrukit'))})
    const m = SharedMap.open(workerData)
    m.set('worker', m.get('main') + 1)
    parentPort.postMessage(m.incr('n', 2))
  `
  const w = new Worker(code, { eval: true, workerData: m.name })
  const got = await new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  await w.terminate()
  t.is(got, 2)
  t.is(m.get('worker'), 2)
  SharedMap.unlink(m.name)
})

/** Starts the fixture with `args`; resolves `ready` at its first line and `done` with { code, lines, stderr }. */
function startChild(args, { timeout }) {
  const p = spawn(self, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let onReady
  const ready = new Promise((resolve) => (onReady = resolve))
  p.stdout.on('data', (d) => {
    stdout += d
    if (stdout.includes('\n')) onReady()
  })
  p.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => p.kill('SIGKILL'), timeout)
  const done = new Promise((resolve) =>
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      onReady()
      resolve({ code: code ?? signal, lines: stdout.trim().split('\n'), stderr })
    }),
  )
  return { ready, done }
}

/** Offsets [from, to) minus the ranges `skip` ([offset, length] pairs), as a sorted list of spans. */
function spansWithout(from, to, skip) {
  const spans = []
  let at = from
  for (const [off, len] of [...skip].sort((x, y) => x[0] - y[0])) {
    if (off > at) spans.push([at, Math.min(off, to)])
    at = Math.max(at, off + len)
  }
  if (at < to) spans.push([at, to])
  return spans
}

testIf(DEV_SHM, NO_DEV_SHM).serial('random byte flips in a live segment (lock words excepted): a concurrent reader and writer neither crash, hang nor throw code-less errors, and repair() restores a consistent map', async (t) => {
  // Flips go through the /dev/shm file: Linux only. The lock objects are skipped: glibc keeps
  // robust-list pointers inside pthread_mutex_t, outside the hostile-memory guarantee
  // (crates/shm-map/src/lib.rs, "Limits"); the 4 KiB header is skipped too (read once, at open).
  const flips = Number(process.env.LRUKIT_FLIPS ?? 10_000)
  const started = Date.now()
  const m = fresh({ capacity: 500, maxKeyBytes: 16, maxValueBytes: 48, json: true })
  for (let i = 0; i < 300; i++) m.set(`k${i}`, [`v${i}`, { i }, i, Buffer.from(`b${i}`), BigInt(i)][i % 5])
  const locks = require('../native.js').debugLockRanges(m) // test support, not exported by lrukit
  t.true(locks.length === m.stats().shards && locks.every(([off, len]) => off >= 4096 && len > 0))
  const path = `/dev/shm/lk_${m.name}`
  const size = statSync(path).size
  const spans = spansWithout(4096, size, locks)
  const total = spans.reduce((n, [a, b]) => n + b - a, 0)
  const pick = (r) => {
    for (const [a, b] of spans) {
      if (r < b - a) return a + r
      r -= b - a
    }
    throw new Error('unreachable')
  }
  let seed = Number(process.env.LRUKIT_FLIP_SEED ?? (Date.now() % 2 ** 31))
  t.log(`flip seed ${seed} (LRUKIT_FLIP_SEED reproduces the offsets)`)
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
  const stop = join(tmpdir(), `lrukit-flip-${m.name}`)
  rmSync(stop, { force: true })
  const kids = ['reader', 'churn'].map((role) => startChild([role, m.name, stop, '60000'], { timeout: 30_000 }))
  await Promise.all(kids.map((k) => k.ready))
  const fd = openSync(path, 'r+')
  const byte = Buffer.alloc(1)
  const flipStart = Date.now()
  for (let i = 0; i < flips; i++) {
    const at = pick(Math.floor(rand() * total))
    readSync(fd, byte, 0, 1, at)
    byte[0] ^= 1 << Math.floor(rand() * 8)
    writeSync(fd, byte, 0, 1, at)
    if (i % 50 === 49) await sleep(10) // spread the damage over ~2 s of concurrent reading and writing
  }
  closeSync(fd)
  const flipMs = Date.now() - flipStart
  writeFileSync(stop, '')
  const results = await Promise.all(kids.map((k) => k.done))
  rmSync(stop, { force: true })
  for (const [i, r] of results.entries()) {
    const role = ['reader', 'writer'][i]
    t.is(r.code, 0, `the ${role} exited ${r.code} (a signal or SIGKILL after 30 s is a crash or a hang): ${r.stderr}`)
    const summary = JSON.parse(r.lines.at(-1))
    t.log(`${role}: ${summary.ops} ops, ${summary.errors} errors ${JSON.stringify(summary.codes)}`)
    t.deepEqual(summary.bad, [], `the ${role} saw errors without a code`)
    t.true(summary.ops > 0, `the ${role} kept working`)
  }
  // this process can still use the damaged map without crashing, and every error has a code
  for (let i = 0; i < 300; i++) {
    try {
      m.get(`k${i}`)
    } catch (e) {
      t.true(e instanceof Error && typeof e.code === 'string', String(e))
    }
  }
  m.repair()
  t.deepEqual(m.verify(), { ok: true, problems: [] }, 'repair() leaves every shard consistent')
  for (let i = 0; i < 100; i++) m.set(`after${i}`, { i })
  for (let i = 0; i < 100; i++) if (!isDeepStrictEqual(m.get(`after${i}`), { i })) t.fail(`after${i} lost`)
  t.deepEqual(m.verify(), { ok: true, problems: [] })
  t.log(`${flips} flips over ${total} bytes (${locks.length} lock objects skipped) in ${flipMs} ms; test wall time ${Date.now() - started} ms`)
  SharedMap.unlink(m.name)
})

test.serial('cluster workers share one map (examples/cluster-http.mjs)', async (t) => {
  const example = fileURLToPath(new URL('../examples/cluster-http.mjs', import.meta.url))
  const out = execFileSync(self, [example], { encoding: 'utf8', timeout: 60_000 })
  const lines = out.trim().split('\n')
  t.true(lines.some((l) => l.includes('(computed)')))
  t.true(lines.some((l) => l.includes('(shared cache hit)')))
  const workers = new Set(lines.filter((l) => l.startsWith('worker ')).map((l) => l.split(':')[0]))
  t.true(workers.size >= 1)
  t.true(lines.at(-1).includes('"hits":4'), lines.at(-1))
})
