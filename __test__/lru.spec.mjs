import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

import { LruCache } from 'lrukit'

import { test, testUnless, fullGc, noFullGc, sleep } from './test.framework.mjs'

const require = createRequire(import.meta.url)

const entriesOf = (cache) => [...cache]
const keysOf = (cache) => [...cache.keys()]

test('require and import give the same class', (t) => {
  const cjs = require('lrukit')
  t.is(cjs.LruCache, LruCache)
  const { noop, echo } = require('../native.js')
  t.is(noop(), undefined, 'the benchmark probes answer from the generated loader')
  t.is(echo('x'), 'x')
})

test('set/get/peek/has/delete/size/capacity', (t) => {
  const c = new LruCache({ capacity: 3 })
  t.is(c.capacity, 3)
  t.is(c.size, 0)
  t.is(c.set('a', 1), c, 'set returns the cache')
  c.set('b', 2)
  t.is(c.get('a'), 1)
  t.is(c.peek('b'), 2)
  t.true(c.has('a'))
  t.false(c.has('zzz'))
  t.is(c.get('zzz'), undefined)
  t.is(c.size, 2)
  t.true(c.delete('a'))
  t.false(c.delete('a'))
  t.is(c.get('a'), undefined)
  t.is(c.size, 1)
  c.clear()
  t.is(c.size, 0)
  t.is(c.get('b'), undefined)
})

test('get promotes, peek and has do not', (t) => {
  const c = new LruCache({ capacity: 2 })
  c.set('a', 1).set('b', 2)
  c.get('a') // a is now MRU, b is LRU
  c.set('c', 3)
  t.deepEqual(keysOf(c), ['c', 'a'])
  c.peek('a')
  c.has('a')
  c.set('d', 4) // a is still LRU despite peek/has
  t.deepEqual(keysOf(c), ['d', 'c'])
})

test('set on an existing key updates it in place', (t) => {
  const c = new LruCache({ capacity: 4 })
  c.set('a', 'old', { timestamp: 1 })
  c.set('b', 'bee', { timestamp: 2 })
  c.set('a', 'new', { timestamp: 3 })
  t.is(c.size, 2, 'no duplicate node')
  t.deepEqual(keysOf(c), ['a', 'b'])
  t.deepEqual(c.popLru(), { key: 'b', value: 'bee', timestamp: 2 })
  t.deepEqual(c.popLru(), { key: 'a', value: 'new', timestamp: 3 })
  t.is(c.popLru(), undefined)
  t.is(c.get('a'), undefined)
})

test('size never exceeds capacity', (t) => {
  for (const capacity of [1, 2, 7, 64]) {
    const c = new LruCache({ capacity })
    for (let i = 0; i < capacity * 5; i++) {
      c.set(`k${i % (capacity * 2)}`, i)
      if (c.size > capacity) return t.fail(`size ${c.size} > capacity ${capacity}`)
    }
    t.is(c.size, capacity)
  }
})

test('popping the last entry leaves a valid empty cache', (t) => {
  const c = new LruCache({ capacity: 2 })
  c.set('only', 1, { timestamp: 10 })
  t.deepEqual(c.popLru(), { key: 'only', value: 1, timestamp: 10 })
  t.is(c.size, 0)
  t.is(c.popLru(), undefined)
  t.is(c.peekLru(), undefined)
  t.deepEqual(keysOf(c), [])
  c.set('x', 'X', { timestamp: 11 }).set('y', 'Y', { timestamp: 12 })
  t.deepEqual(keysOf(c), ['y', 'x'])
  t.deepEqual(c.peekLru(), { key: 'x', value: 'X', timestamp: 11 })
  t.is(c.size, 2)
})

test('popLru returns key, value and insert timestamp (Date.now() unless given)', (t) => {
  const c = new LruCache({ capacity: Infinity })
  const before = Date.now()
  c.set(42, { flow: 1 })
  const after = Date.now()
  c.set('later', 2, { timestamp: 1234.5 })
  const e = c.popLru()
  t.is(e.key, 42)
  t.deepEqual(e.value, { flow: 1 })
  t.true(e.timestamp >= before && e.timestamp <= after, 'timestamp defaults to Date.now()')
  t.deepEqual(c.popLru(), { key: 'later', value: 2, timestamp: 1234.5 })
})

test('peekLru does not remove or promote', (t) => {
  const c = new LruCache({ capacity: 3 })
  c.set('a', 1, { timestamp: 5 }).set('b', 2)
  t.deepEqual(c.peekLru(), { key: 'a', value: 1, timestamp: 5 })
  t.is(c.size, 2)
  t.deepEqual(keysOf(c), ['b', 'a'])
})

test('key types: strings, numbers, bigints and bytes are distinct, SameValueZero for numbers', (t) => {
  const c = new LruCache({ capacity: 100 })
  c.set('1', 'string one').set(1, 'number one').set(1n, 'bigint one')
  c.set(Buffer.from('1'), 'buffer one')
  t.is(c.size, 4)
  t.is(c.get('1'), 'string one')
  t.is(c.get(1), 'number one')
  t.is(c.get(1.0), 'number one')
  t.is(c.get(1n), 'bigint one')
  t.is(c.get(Buffer.from('1')), 'buffer one')
  t.is(c.get(new Uint8Array([0x31])), 'buffer one', 'Uint8Array and Buffer with equal bytes are one key')
  c.set(-0, 'zero')
  t.is(c.get(0), 'zero')
  c.set(NaN, 'nan')
  t.is(c.get(Number.NaN), 'nan')
  c.set(-(2n ** 70n), 'big negative')
  t.is(c.get(-(2n ** 70n)), 'big negative')
  t.is(c.get(2n ** 70n), undefined)
  c.set(0n, 'big zero')
  t.is(c.get(-0n), 'big zero')
  const long = 'ключ-'.repeat(200) // > 256 UTF-8 bytes: exercises the slow path
  c.set(long, 'long')
  t.is(c.get(long), 'long')
  t.is(c.get(long + 'x'), undefined)
  // multi-byte characters straddling the end of the fast-path buffer must not truncate keys
  for (let n = 240; n < 270; n++) {
    const prefix = 'a'.repeat(n)
    c.set(prefix + '€€', 'euro')
    t.is(c.get(prefix + '€'), undefined, `length ${n}: a prefix is another key`)
    t.is(c.get(prefix + '€€'), 'euro')
  }
  c.set('', 'empty')
  t.is(c.get(''), 'empty')
  c.set('emoji 🎉', 'party')
  t.is(c.get('emoji 🎉'), 'party')
})

test('keys come back with their type', (t) => {
  const c = new LruCache({ capacity: 10 })
  c.set('s', 0).set(2.5, 0).set(-(2n ** 65n), 0).set(Buffer.from([1, 2, 3]), 0)
  const keys = keysOf(c).reverse()
  t.is(keys[0], 's')
  t.is(keys[1], 2.5)
  t.is(keys[2], -(2n ** 65n))
  t.true(Buffer.isBuffer(keys[3]))
  t.deepEqual([...keys[3]], [1, 2, 3])
})

test('values: primitives round-trip and objects keep their identity', (t) => {
  const c = new LruCache({ capacity: 100 })
  const obj = { a: 1 }
  const arr = [1, 2]
  const fn = () => 1
  const sym = Symbol('s')
  const buf = Buffer.from('bytes')
  const values = [undefined, null, true, false, 0, -1.5, NaN, 2 ** 53, 'text', '', 'ünïcödé ✓', 10n ** 30n, -5n]
  values.forEach((v, i) => c.set(`p${i}`, v))
  values.forEach((v, i) => t.true(Object.is(c.get(`p${i}`), v), `value #${i}`))
  t.true(c.has('p0'), 'undefined is a stored value')
  c.set('obj', obj).set('arr', arr).set('fn', fn).set('sym', sym).set('buf', buf)
  t.is(c.get('obj'), obj)
  t.is(c.get('arr'), arr)
  t.is(c.get('fn'), fn)
  t.is(c.get('sym'), sym)
  t.is(c.get('buf'), buf)
  t.is(c.popLru().value, undefined)
})

test('bad input: clear errors with stable codes, nothing lost', (t) => {
  for (const capacity of [0, -1, NaN, 1.5, -Infinity, 2 ** 40]) {
    t.throws(() => new LruCache({ capacity }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  }
  t.throws(() => new LruCache({ capacity: '10' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  t.throws(() => new LruCache(), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new LruCache({ capacity: 2, ttl: -1 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TTL' })
  t.throws(() => new LruCache({ capacity: 2, ttl: 'soon' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TTL' })

  const c = new LruCache({ capacity: 2 })
  c.set('keep', 'me')
  for (const key of [{}, null, undefined, Symbol('k'), () => 1, true, [1]]) {
    t.throws(() => c.set(key, 1), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
    t.throws(() => c.get(key), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
    t.throws(() => c.has(key), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
    t.throws(() => c.delete(key), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
  }
  t.throws(() => c.set('k', 1, { ttl: NaN }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TTL' })
  t.throws(() => c.set('k', 1, { timestamp: Infinity }), {
    instanceOf: RangeError,
    code: 'ERR_LRUKIT_INVALID_TIMESTAMP',
  })
  t.throws(() => c.set('k', 1, { timestamp: '1' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TIMESTAMP' })
  t.throws(() => c.getMany('nope'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => c.setMany([['ok', 1], 'bad']), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => c.getMany(['ok', {}]), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
  t.is(c.get('keep'), 'me', 'failed calls lost nothing')
  t.is(c.has('k'), false, 'a rejected set stores nothing')
})

test('ttl: an entry is live until the clock reaches its deadline, then missing everywhere', (t) => {
  const c = new LruCache({ capacity: 10, ttl: 25, clock: 'manual' })
  c.set('short', 1) // deadline 0 + 25 (the default ttl)
  c.set('forever', 2, { ttl: 0 })
  c.set('long', 3, { ttl: 60_000 })
  c.set('peeked', 4)
  t.is(c.advanceTime(24), 24)
  t.is(c.get('short'), 1, 'live 1 ms before the deadline')
  t.is(c.peek('peeked'), 4)
  t.true(c.has('peeked'))
  t.is(c.advanceTime(1), 25)
  t.is(c.peek('peeked'), undefined, 'expired at the deadline')
  t.false(c.has('peeked'))
  t.is(c.get('short'), undefined)
  t.is(c.size, 3, 'get reclaimed the expired entry it touched; peek and has did not')
  t.false(c.delete('peeked'), 'deleting an expired entry reports missing')
  t.is(c.size, 2)
  t.is(c.get('forever'), 2)
  t.is(c.get('long'), 3)
  t.deepEqual(keysOf(c), ['long', 'forever'])
  t.deepEqual(c.getMany(['short', 'long', 'forever']), [undefined, 3, 2])
  c.advanceTime(59_974)
  t.is(c.peek('long'), 3, 'a per-set ttl overrides the default: live at 59,999')
  c.advanceTime(1)
  t.is(c.peek('long'), undefined, 'expired at 60,000')
  c.advanceTime(1)
  t.is(c.peek('long'), undefined, 'and after')
  t.is(c.size, 2, 'the expired entry is still counted...')
  t.deepEqual([...c.entries()], [['forever', 2]], '...but iteration skips it, leaving no hole')
  t.deepEqual(keysOf(c), ['forever'])
  t.deepEqual([...c.values()], [2])
  t.deepEqual(entriesOf(c), [['forever', 2]])
  t.is(c.popLru().key, 'forever', 'popLru skips (and reclaims) the expired entry at the LRU end')
  t.is(c.size, 0)
  t.is(c.advanceTime(2 ** 40), 2 ** 40 + 60_001)
  c.set('x', 0)
  t.is(c.advanceTime(24.5), 2 ** 40 + 60_025.5)
  t.true(c.has('x'), 'half a ms before its deadline')
  c.advanceTime(0.5)
  t.false(c.has('x'), 'fractions of a ms count')
})

test('ttl: setting a key again restarts its ttl; a given timestamp does not move the deadline', (t) => {
  const c = new LruCache({ capacity: 4, clock: 'manual' })
  c.set('k', 1, { ttl: 10 })
  c.advanceTime(8)
  c.set('k', 2, { ttl: 10 }) // deadline 18
  c.advanceTime(9)
  t.is(c.get('k'), 2, 'the old deadline (10) no longer applies')
  c.advanceTime(1)
  t.is(c.get('k'), undefined)
  c.set('old', 'o', { ttl: 5, timestamp: -1e9 }).set('new', 'n', { ttl: 5, timestamp: 1e12 })
  c.advanceTime(4)
  t.deepEqual(c.getMany(['old', 'new']), ['o', 'n'], 'both live: the deadline runs on the clock')
  c.advanceTime(1)
  t.deepEqual(c.getMany(['old', 'new']), [undefined, undefined])
})

test('ttl: purgeStale reclaims, popLru and peekLru skip expired', (t) => {
  const c = new LruCache({ capacity: 10, clock: 'manual' })
  c.set('old1', 1, { ttl: 10 }).set('old2', 2, { ttl: 10 }).set('live', 3)
  c.advanceTime(9)
  t.deepEqual(c.peekLru(), { key: 'old1', value: 1, timestamp: 0 }, 'live just before the deadline')
  t.is(c.purgeStale(), 0)
  c.advanceTime(1)
  t.is(c.size, 3, 'size counts expired entries until they are reclaimed')
  t.deepEqual(c.peekLru(), { key: 'live', value: 3, timestamp: 0 })
  t.is(c.size, 1, 'peekLru reclaimed the two expired entries at the LRU end')
  c.set('old3', 4, { ttl: 10 }) // at 10: deadline 20
  c.advanceTime(9.5)
  t.is(c.purgeStale(), 0)
  t.is(c.size, 2)
  c.advanceTime(0.5)
  t.is(c.purgeStale(), 1)
  t.is(c.size, 1)
  c.advanceTime(1)
  t.is(c.purgeStale(), 0, 'after the deadline there is nothing left to purge')
})

test("clock: 'manual' starts at 0, moves only through advanceTime and stamps entries", (t) => {
  const c = new LruCache({ capacity: 8, clock: 'manual' })
  t.is(c.now(), 0)
  c.set('a', 1)
  t.is(c.now(), 0, 'set does not move the clock')
  t.is(c.advanceTime(1.5), 1.5, 'advanceTime returns the new time; fractions are kept')
  t.is(c.now(), 1.5)
  t.is(c.advanceTime(0), 1.5)
  c.set('b', 2)
  c.set('c', 3, { timestamp: 99 })
  c.advanceTime(2)
  c.setMany([['d', 4]])
  t.deepEqual(c.popLru(), { key: 'a', value: 1, timestamp: 0 })
  t.deepEqual(c.popLru(), { key: 'b', value: 2, timestamp: 1.5 })
  t.deepEqual(c.popLru(), { key: 'c', value: 3, timestamp: 99 })
  t.deepEqual(c.popLru(), { key: 'd', value: 4, timestamp: 3.5 }, 'setMany stamps with the clock too')
  const other = new LruCache({ capacity: 2, clock: 'manual' })
  t.is(other.now(), 0, 'each cache has its own clock')
})

test('clock: the default is the wall clock, which advanceTime cannot move', (t) => {
  for (const clock of [undefined, null, 'system']) {
    const c = new LruCache({ capacity: 2, clock })
    const before = Date.now()
    const now = c.now()
    t.true(before <= now && now <= Date.now(), `${clock}: now() reads Date.now()`)
    t.throws(() => c.advanceTime(1), {
      instanceOf: TypeError,
      code: 'ERR_LRUKIT_INVALID_ARGUMENT',
      message: /advanceTime needs a cache made with clock: 'manual'/,
    })
  }
})

test('clock: bad values are coded errors and change nothing', (t) => {
  t.throws(() => new LruCache({ capacity: 2, clock: 'monotonic' }), {
    instanceOf: RangeError,
    code: 'ERR_LRUKIT_INVALID_ARGUMENT',
    message: /clock must be 'system' or 'manual', got 'monotonic'/,
  })
  for (const clock of ['', 'Manual']) {
    t.throws(() => new LruCache({ capacity: 2, clock }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
  for (const clock of [1, true, {}, Symbol('clock'), () => 'manual']) {
    t.throws(() => new LruCache({ capacity: 2, clock }), {
      instanceOf: TypeError,
      code: 'ERR_LRUKIT_INVALID_ARGUMENT',
      message: /clock must be a string/,
    })
  }
  const c = new LruCache({ capacity: 2, clock: 'manual' })
  c.advanceTime(5)
  for (const ms of [-1, -0.5, NaN, Infinity, -Infinity, 2 ** 53 + 2]) {
    t.throws(() => c.advanceTime(ms), {
      instanceOf: RangeError,
      code: 'ERR_LRUKIT_INVALID_ARGUMENT',
      message: /ms must be a number from 0 to 2\^53/,
    })
  }
  for (const ms of ['1', undefined, null, 1n, {}]) {
    t.throws(() => c.advanceTime(ms), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
  t.throws(() => c.advanceTime(2 ** 53 - 4), {
    instanceOf: RangeError,
    code: 'ERR_LRUKIT_INVALID_ARGUMENT',
    message: /past 2\^53/,
  })
  t.is(c.now(), 5, 'refused steps did not move the clock')
  t.is(c.advanceTime(2 ** 53 - 5), 2 ** 53, 'up to 2^53 exactly')
  t.throws(() => c.advanceTime(1), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
})

test('iteration is MRU to LRU: keys, values, entries, Symbol.iterator', (t) => {
  const c = new LruCache({ capacity: 5 })
  c.set('a', 1).set('b', 2).set('c', 3)
  c.get('a')
  t.deepEqual(keysOf(c), ['a', 'c', 'b'])
  t.deepEqual([...c.values()], [1, 3, 2])
  t.deepEqual([...c.entries()], [['a', 1], ['c', 3], ['b', 2]])
  t.deepEqual(entriesOf(c), [['a', 1], ['c', 3], ['b', 2]])
  t.is(typeof c.keys().next, 'function')
  t.deepEqual(new Map(c), new Map([['a', 1], ['c', 3], ['b', 2]]))
})

test('getMany/setMany behave like repeated get/set', (t) => {
  const a = new LruCache({ capacity: 50 })
  const b = new LruCache({ capacity: 50 })
  const entries = Array.from({ length: 80 }, (_, i) => [`k${i % 60}`, i])
  a.setMany(entries)
  for (const [k, v] of entries) b.set(k, v)
  t.deepEqual(keysOf(a), keysOf(b))
  const keys = Array.from({ length: 70 }, (_, i) => `k${(i * 7) % 65}`)
  const batch = a.getMany(keys)
  const single = keys.map((k) => b.get(k))
  t.deepEqual(batch, single)
  t.true(batch.includes(undefined), 'misses come back as undefined')
  t.deepEqual(keysOf(a), keysOf(b), 'getMany promotes like get')
  // misses are elements, not holes: for...in, forEach and Object.keys see every position
  t.is(Object.keys(batch).length, keys.length, 'every position of the result is an own element')
  t.deepEqual(Object.keys(a.getMany(['nope', 'k1', 'nope'])), ['0', '1', '2'])
  t.deepEqual(Object.keys(a.getMany(['nope', 'nope'])), ['0', '1'], 'a batch of misses only')
  t.is(a.setMany([]), a)
  t.deepEqual(a.getMany([]), [])
})

test('capacity Infinity: unbounded, pruned only by popLru', (t) => {
  const c = new LruCache({ capacity: Infinity })
  t.is(c.capacity, Infinity)
  for (let i = 0; i < 5000; i++) c.set(i, i * 2)
  t.is(c.size, 5000)
  t.is(c.get(0), 0)
  t.is(c.popLru().key, 1)
  t.is(c.get(4999), 9998)
  t.is(c.size, 4999)
})

testUnless(noFullGc, 'values are released when removed, evicted, replaced or cleared', async (t) => {
  const c = new LruCache({ capacity: 2 })
  const refs = []
  const put = (key) => {
    const o = { key, payload: Array.from({ length: 100 }, () => key) }
    refs.push(new WeakRef(o))
    c.set(key, o)
  }
  put('deleted')
  c.delete('deleted')
  put('replaced')
  c.set('replaced', 'primitive')
  put('evicted')
  put('e2')
  put('e3') // evicts "evicted"
  put('cleared')
  c.clear()
  for (let i = 0; i < 10 && refs.some((r) => r.deref()); i++) {
    await sleep(10)
    fullGc()
  }
  t.deepEqual(
    refs.map((r) => r.deref() === undefined),
    refs.map(() => true),
  )
})

testUnless(noFullGc, 'kept values stay alive across GC', async (t) => {
  const c = new LruCache({ capacity: 4 })
  c.set('x', { deep: { v: 7 } })
  fullGc()
  await sleep(5)
  fullGc()
  t.is(c.get('x').deep.v, 7)
})

test('works inside a worker_thread (each thread has its own caches)', async (t) => {
  const code = `
    const { parentPort } = require('node:worker_threads')
    const { LruCache } = require(${JSON.stringify(require.resolve('lrukit'))})
    const c = new LruCache({ capacity: 2 })
    c.set('a', 1).set('b', 2).set('c', 3)
    parentPort.postMessage({ keys: [...c.keys()], size: c.size, popped: c.popLru() })
  `
  const w = new Worker(code, { eval: true })
  const msg = await new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  await w.terminate()
  t.deepEqual(msg.keys, ['c', 'b'])
  t.is(msg.size, 2)
  t.is(msg.popped.key, 'b')
})

test('re-entrant calls from element getters are refused, not aliased', (t) => {
  const c = new LruCache({ capacity: 4 })
  c.set('a', 1)
  const keys = ['a']
  Object.defineProperty(keys, 1, {
    get() {
      c.set('sneaky', 1)
      return 'b'
    },
  })
  t.throws(() => c.getMany(keys), { code: 'ERR_LRUKIT_REENTRANT' })
  t.throws(() => c.getMany(new Proxy(['a'], {})), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.is(c.get('a'), 1, 'the cache still works after a refused re-entrant call')
  t.false(c.has('sneaky'))
  // options are read before the cache is borrowed, so a getter may use the cache
  const opts = {
    get ttl() {
      return c.get('a') === 1 ? 0 : 5
    },
  }
  c.set('b', 2, opts)
  t.is(c.get('b'), 2)
})

test('hot methods work detached from the instance', (t) => {
  const c = new LruCache({ capacity: 4 })
  const { get, set } = c
  set('k', 'v')
  t.is(get('k'), 'v')
  t.is(c.get('k'), 'v')
  t.false(Object.keys(c).includes('get'), 'methods are not enumerable')
  t.true(c instanceof LruCache)
})

testUnless(noFullGc, 'a garbage-collected cache releases the values it held', async (t) => {
  const refs = []
  ;(() => {
    const c = new LruCache({ capacity: 8 })
    for (let i = 0; i < 4; i++) {
      const o = { i }
      refs.push(new WeakRef(o))
      c.set(i, o)
    }
  })()
  for (let i = 0; i < 20 && refs.some((r) => r.deref()); i++) {
    await sleep(10)
    fullGc()
  }
  t.true(
    refs.every((r) => r.deref() === undefined),
    'values of a collected cache are collectable',
  )
})

