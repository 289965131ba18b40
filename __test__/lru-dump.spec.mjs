// LruCache#dump() / #load(entries), shaped as lru-cache's (npm lru-cache v11: `dump()` returns
// `[key, { value, ttl, start }]` pairs least recently used first; `load` clears the cache and sets
// them in order): recency order and values survive, TTLs keep their deadlines on the cache's clock
// (manual clocks only, no waiting), expired entries are skipped, a malformed array changes nothing,
// and dumps go both ways between lrukit and lru-cache.
import { createRequire } from 'node:module'

import { LruCache } from 'lrukit'

import { test } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const keysOf = (cache) => [...cache.keys()]

test('dump lists live entries least recently used first; load reproduces the order and values', (t) => {
  const a = new LruCache({ capacity: 10, clock: 'manual' })
  const obj = { o: 1 }
  a.set('a', 1).set(2, obj).set(3n, 'three').set(Buffer.from('b'), null)
  a.get('a') // now the most recently used
  const d = a.dump()
  t.deepEqual(
    d.map(([k]) => (Buffer.isBuffer(k) ? `buf:${k}` : k)),
    [2, 3n, 'buf:b', 'a'],
  )
  t.deepEqual(d[3], ['a', { value: 1, ttl: 0, start: 0 }])
  t.is(d[0][1].value, obj, 'objects are dumped by reference')
  const b = new LruCache({ capacity: 10, clock: 'manual' })
  b.set('gone', 'cleared by load')
  t.is(b.load(d), undefined)
  t.deepEqual(keysOf(b), keysOf(a), 'same recency order, most recent first')
  t.deepEqual(b.dump(), d, 'the same dump again')
  t.is(b.get(2), obj)
  t.is(b.has('gone'), false, 'load clears the cache first, as lru-cache does')
  // a smaller cache keeps the most recently used entries
  const small = new LruCache({ capacity: 2 })
  small.load(d)
  t.is(small.size, 2)
  t.deepEqual(keysOf(small), ['a', keysOf(a)[1]])
})

test('TTLs keep their deadlines on the cache clock; entries past them are skipped', (t) => {
  const a = new LruCache({ capacity: 10, clock: 'manual', ttl: 1000 })
  a.set('default', 1) // deadline 1000
  a.set('own', 2, { ttl: 300 }) // deadline 300
  a.set('never', 3, { ttl: 0 })
  a.set('stamped', 4, { timestamp: -50, ttl: 100 }) // deadline 100 (the clock at set + ttl)
  a.set('expired', 5, { ttl: 10 })
  a.advanceTime(20)
  const d = a.dump()
  t.deepEqual(
    Object.fromEntries(d.map(([k, e]) => [k, [e.start, e.ttl]])),
    { default: [0, 1000], own: [0, 300], never: [0, 0], stamped: [-50, 150] },
    'expired entries are not dumped; start + ttl is the deadline',
  )
  const b = new LruCache({ capacity: 10, clock: 'manual' })
  b.advanceTime(200) // past 'stamped''s deadline
  b.load(d)
  t.deepEqual(keysOf(b).sort(), ['default', 'never', 'own'])
  t.is(b.peekLru()?.timestamp, 0, 'the insert timestamps are kept')
  b.advanceTime(99)
  t.is(b.get('own'), 2)
  b.advanceTime(1) // 300: its deadline
  t.is(b.get('own'), undefined)
  b.advanceTime(699)
  t.is(b.get('default'), 1)
  b.advanceTime(1)
  t.is(b.get('default'), undefined)
  b.advanceTime(1e9)
  t.is(b.get('never'), 3)
  // ttl without start counts from now; neither: the cache's default TTL
  const c = new LruCache({ capacity: 10, clock: 'manual', ttl: 50 })
  c.advanceTime(1000)
  c.load([['t', { value: 1, ttl: 10 }], ['d', { value: 2 }], ['s', { value: 3, start: 7 }]])
  t.is(c.peekLru()?.timestamp, 1000)
  c.advanceTime(10)
  t.deepEqual(keysOf(c).sort(), ['d', 's'])
  t.is(c.dump().find(([k]) => k === 's')?.[1].start, 7)
  c.advanceTime(40)
  t.deepEqual(keysOf(c), [])
})

test('a malformed array throws before the cache is touched', (t) => {
  const c = new LruCache({ capacity: 10 })
  c.set('kept', 1)
  const bad = [
    ['not an array', 'ERR_LRUKIT_INVALID_ARGUMENT', TypeError],
    [[['k', { value: 1 }], 'not a pair'], 'ERR_LRUKIT_INVALID_ARGUMENT', TypeError],
    [[['k', 1]], 'ERR_LRUKIT_INVALID_ARGUMENT', TypeError],
    [[[{}, { value: 1 }]], 'ERR_LRUKIT_INVALID_KEY', TypeError],
    [[['k', { value: 1, ttl: -1 }]], 'ERR_LRUKIT_INVALID_TTL', RangeError],
    [[['k', { value: 1, ttl: '5' }]], 'ERR_LRUKIT_INVALID_TTL', TypeError],
    [[['k', { value: 1, start: Infinity }]], 'ERR_LRUKIT_INVALID_TIMESTAMP', RangeError],
  ]
  for (const [entries, code, ctor] of bad) {
    // a good pair first (an object value: its reference is taken, then given back)
    const arg = Array.isArray(entries) ? [['first', { value: { an: 'object' } }], ...entries] : entries
    const e = t.throws(() => c.load(arg), { instanceOf: ctor })
    t.is(e?.code, code, JSON.stringify(entries))
    t.deepEqual(keysOf(c), ['kept'], 'nothing changed')
  }
})

test('dumps go both ways between lrukit and lru-cache', (t) => {
  const { LRUCache } = require('lru-cache')
  const now = Date.now()
  const theirs = new LRUCache({ max: 10, ttl: 60_000 })
  theirs.set('a', 1)
  theirs.set('b', { two: 2 }, { ttl: 0 })
  theirs.set('c', 'three', { ttl: 5_000 })
  theirs.get('a')
  const ours = new LruCache({ capacity: 10 })
  ours.load(theirs.dump())
  t.deepEqual(keysOf(ours), [...theirs.keys()], 'same recency order')
  t.deepEqual(ours.get('b'), { two: 2 })
  const back = new LRUCache({ max: 10, ttl: 1 })
  back.load(ours.dump())
  t.deepEqual([...back.keys()], keysOf(ours))
  for (const k of ['a', 'b', 'c']) t.deepEqual(back.get(k), ours.get(k))
  // deadlines survive both trips (within the clock's millisecond rounding)
  const remaining = (k) => back.getRemainingTTL(k)
  t.true(Math.abs(remaining('c') - (now + 5_000 - Date.now())) < 50, `c: ${remaining('c')}`)
  t.true(Math.abs(remaining('a') - (now + 60_000 - Date.now())) < 50, `a: ${remaining('a')}`)
  t.is(remaining('b'), Infinity, 'ttl 0: no expiry')
})
