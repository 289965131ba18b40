// lrukit/keyv through Keyv 5 (the version @keyv/test-suite 2.1.2 expects; the suite itself runs
// under vitest in __test__/keyv/): processes sharing a KeyvSharedMap, store errors as 'error'
// events, namespaces and clear, how a ttl reaches the store, values with Keyv's serializer off,
// and the adapters' own options. Real SharedMap segments and real child processes throughout.
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import Keyv from 'keyv'
import { LruCache, SharedMap } from 'lrukit'
import * as esm from 'lrukit/keyv'
import { KeyvLruCache, KeyvSharedMap } from 'lrukit/keyv'

import { isBun, runProcess, test } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const child = fileURLToPath(new URL('./keyv/child.mjs', import.meta.url))
let counter = 0
/** A map name unique to this test process and runtime (at most 24 characters). */
const uniqueName = () => `kv${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`

/** A Keyv on `store` that collects its 'error' events. */
function keyvOn(store, options = {}) {
  const keyv = new Keyv({ store, ...options })
  const errors = []
  keyv.on('error', (error) => errors.push(error))
  return { keyv, errors }
}

/** A Proxy over a real SharedMap or LruCache that records every method call (the calls still run). */
function recording(target) {
  const calls = []
  const proxy = new Proxy(target, {
    get(t, key) {
      const value = Reflect.get(t, key)
      if (typeof value !== 'function') return value
      return (...args) => {
        calls.push([key, ...args])
        return value.apply(t, args)
      }
    },
  })
  return { proxy, calls }
}

test('the CommonJS and ESM entries export the same two classes', (t) => {
  const cjs = require('lrukit/keyv')
  t.deepEqual(Object.keys(cjs).sort(), ['KeyvLruCache', 'KeyvSharedMap'])
  t.is(esm.KeyvSharedMap, cjs.KeyvSharedMap)
  t.is(esm.KeyvLruCache, cjs.KeyvLruCache)
})

test('two processes on one KeyvSharedMap name see each other’s writes through Keyv', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  try {
    const [a, b] = await Promise.all([
      runProcess(process.execPath, [child, name, 'alpha', 'beta']),
      runProcess(process.execPath, [child, name, 'beta', 'alpha']),
    ])
    t.is(a.code, 0)
    t.is(b.code, 0)
    const fromA = JSON.parse(a.out)
    const fromB = JSON.parse(b.out)
    t.true(fromA.wrote)
    t.true(fromB.wrote)
    t.deepEqual(fromA.errors, [])
    t.deepEqual(fromB.errors, [])
    t.is(fromA.seen.from, 'beta')
    t.is(fromB.seen.from, 'alpha')
    t.not(fromA.seen.pid, fromB.seen.pid, 'written by two processes')
    t.deepEqual(fromA.seen.list, [1, 2, 3])
    // This process sees both, through its own Keyv on the same name.
    const store = new KeyvSharedMap(name)
    const { keyv } = keyvOn(store, { namespace: 'procs' })
    t.deepEqual((await keyv.get(['alpha', 'beta'])).map((v) => v.from), ['alpha', 'beta'])
    t.deepEqual([...store.map.keys()].sort(), ['procs:alpha', 'procs:beta'])
    t.deepEqual(store.map.verify(), { ok: true, problems: [] })
    await keyv.disconnect()
    t.true(store.map.closed, 'the adapter closes the handle it opened')
  } finally {
    t.true(SharedMap.unlink(name), 'the children made the segment under that name')
  }
})

test('a value over maxValueBytes is an EVALUETOOLONG error event, set resolves false, nothing is lost', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const store = new KeyvSharedMap(name, { memorySize: 2 ** 20, maxValueBytes: 1024 })
  try {
    const { keyv, errors } = keyvOn(store)
    t.true(await keyv.set('k', 'small'))
    t.false(await keyv.set('k', 'x'.repeat(5000)))
    t.is(errors.length, 1)
    t.true(errors[0] instanceof RangeError)
    t.is(errors[0].code, 'EVALUETOOLONG')
    t.is(await keyv.get('k'), 'small', 'the refused write changed nothing')
    // setMany: one result per entry, the refused one false, the others stored.
    t.deepEqual(
      await keyv.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: 'y'.repeat(5000) },
        { key: 'c', value: 3 },
      ]),
      [true, false, true],
    )
    t.is(errors.length, 2)
    t.is(errors[1].code, 'EVALUETOOLONG')
    t.deepEqual(await keyv.get(['a', 'b', 'c']), [1, undefined, 3])
    t.deepEqual(store.map.verify(), { ok: true, problems: [] })
  } finally {
    await store.disconnect()
    SharedMap.unlink(name)
  }
})

test('a full map without eviction is an EFULL error event; a closed handle is ECLOSED; nothing throws', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { memorySize: 64 * 1024, eviction: 'none', maxValueBytes: 4096 })
  try {
    const store = new KeyvSharedMap(map)
    const { keyv, errors } = keyvOn(store)
    let stored = 0
    let result
    while ((result = await keyv.set(`k${stored}`, 'v'.repeat(1000))) === true) stored++
    t.false(result)
    t.true(stored > 10, `stored ${stored} entries before the map was full`)
    t.is(errors.length, 1)
    t.is(errors[0].code, 'EFULL')
    t.is(await keyv.get('k0'), 'v'.repeat(1000), 'entries already stored are kept')
    t.deepEqual(map.verify(), { ok: true, problems: [] })

    await keyv.disconnect()
    t.false(map.closed, 'disconnect leaves a map the adapter was given open')
    map.close()
    t.is(await keyv.get('k0'), undefined)
    t.false(await keyv.set('k0', 'x'))
    t.false(await keyv.has('k0'))
    t.false(await keyv.delete('k0'))
    t.deepEqual(await keyv.get(['k0', 'k1']), [undefined, undefined])
    t.is(await keyv.clear(), undefined)
    const codes = errors.slice(1).map((e) => e.code)
    t.true(codes.length >= 6 && codes.every((c) => c === 'ECLOSED'), codes.join())
  } finally {
    map.close()
    SharedMap.unlink(name)
  }
})

test('without an error listener a store call rejects with the error (as emitting error throws)', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const store = new KeyvSharedMap(name, { memorySize: 2 ** 20, maxValueBytes: 64 })
  try {
    let rejected
    await store.set('k', 'x'.repeat(100)).catch((e) => (rejected = e))
    t.is(rejected?.code, 'EVALUETOOLONG')
    const seen = []
    store.on('error', (e) => seen.push(e.code))
    t.false(await store.set('k', 'x'.repeat(100)))
    t.deepEqual(seen, ['EVALUETOOLONG'])
  } finally {
    await store.disconnect()
    SharedMap.unlink(name)
  }
})

for (const kind of ['SharedMap', 'LruCache']) {
  test(`${kind}: clear() removes only its namespace's keys; without a namespace, every key`, async (t) => {
    const name = uniqueName()
    SharedMap.unlink(name)
    const map = kind === 'SharedMap' ? SharedMap.create(name, { memorySize: 2 ** 20 }) : null
    const backend = map ?? new LruCache({ capacity: 100 })
    const store = () => (map ? new KeyvSharedMap(map) : new KeyvLruCache(backend))
    try {
      const a = new Keyv({ store: store(), namespace: 'a' })
      const a2 = new Keyv({ store: store(), namespace: 'a2' })
      const b = new Keyv({ store: store(), namespace: 'b' })
      for (const [keyv, value] of [
        [a, 'A'],
        [a2, 'A2'],
        [b, 'B'],
      ]) {
        await keyv.set('x', value)
        await keyv.set('y', value)
      }
      backend.set('a-not-keyv', 1) // a key of other code, next to Keyv's
      backend.set(7, 2)
      await a.clear()
      t.is(await a.get('x'), undefined)
      t.is(await a.get('y'), undefined)
      t.is(await a2.get('x'), 'A2', "'a2:' keys do not start with 'a:'")
      t.is(await b.get('y'), 'B')
      t.deepEqual(
        [...backend.keys()].filter((k) => k !== undefined).map(String).sort(),
        ['7', 'a-not-keyv', 'a2:x', 'a2:y', 'b:x', 'b:y'],
      )
      const everything = new Keyv({ store: store(), namespace: undefined })
      await everything.clear()
      t.deepEqual([...backend.keys()].filter((k) => k !== undefined), [])
      if (map) t.deepEqual(map.verify(), { ok: true, problems: [] })
    } finally {
      map?.close()
      SharedMap.unlink(name)
    }
  })
}

test('iterator(namespace): Keyv 5 does not attach it, the store yields its namespace’s entries', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const shared = new KeyvSharedMap(name, { memorySize: 2 ** 20 })
  try {
    for (const store of [shared, new KeyvLruCache()]) {
      const a = new Keyv({ store, namespace: 'a' })
      const b = new Keyv({ store, namespace: 'b' })
      t.is(a.iterator, undefined, 'Keyv 5 attaches keyv.iterator only for a Map or a listed dialect')
      await a.set('one', 1)
      await a.set('two', 2)
      await b.set('one', 'b1')
      const entries = []
      for await (const [key, raw] of store.iterator('a')) entries.push([key, JSON.parse(raw).value])
      t.deepEqual(entries.sort(), [
        ['a:one', 1],
        ['a:two', 2],
      ])
      const all = []
      for await (const [key] of store.iterator('')) all.push(key)
      t.deepEqual(all.sort(), ['a:one', 'a:two', 'b:one'])
      // Without an argument it iterates the namespace Keyv last set on the store.
      const last = []
      for await (const [key] of store.iterator()) last.push(key)
      t.deepEqual(last, ['b:one'])
    }
  } finally {
    await shared.disconnect()
    SharedMap.unlink(name)
  }
})

test('the ttl Keyv passes reaches the store as the entry’s ttl; no ttl leaves the store’s default', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { memorySize: 2 ** 20 })
  try {
    for (const backend of [map, new LruCache({ capacity: 10 })]) {
      const { proxy, calls } = recording(backend)
      const store = backend === map ? new KeyvSharedMap(proxy) : new KeyvLruCache(proxy)
      const keyv = new Keyv({ store })
      await keyv.set('a', 1, 1500)
      await keyv.set('b', 2)
      await keyv.set('c', 3, 0)
      await new Keyv({ store, ttl: 250 }).set('d', 4)
      await keyv.setMany([
        { key: 'e', value: 5, ttl: 60_000 },
        { key: 'f', value: 6 },
      ])
      const sets = calls.filter(([method]) => method === 'set').map(([, key, , options]) => [key, options])
      t.deepEqual(sets, [
        ['keyv:a', { ttl: 1500 }],
        ['keyv:b', undefined],
        ['keyv:c', undefined],
        ['keyv:d', { ttl: 250 }],
        ['keyv:e', { ttl: 60_000 }],
        ['keyv:f', undefined],
      ])
      // Keyv's own expiry travels in the stored envelope.
      const expires = JSON.parse(backend.get('keyv:a')).expires
      t.true(expires > Date.now() + 1000 && expires <= Date.now() + 1500, `expires ${expires}`)
      t.is(JSON.parse(backend.get('keyv:b')).expires, undefined)
      t.true(backend.has('keyv:a'))
      // A negative ttl is already expired: the key is deleted, not stored.
      t.true(await store.set('keyv:a', 'x', -1))
      t.false(backend.has('keyv:a'))
    }
  } finally {
    map.close()
    SharedMap.unlink(name)
  }
})

test('Keyv with its serializer off: envelopes are JSON in a SharedMap the adapter opened, references in an LruCache', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const store = new KeyvSharedMap(name, { memorySize: 2 ** 20 })
  const plain = new KeyvSharedMap(SharedMap.open(name))
  try {
    const off = { serialize: undefined, deserialize: undefined }
    const value = { user: 'ada', tags: ['a', 'b'], n: 1.5, nested: { ok: true } }
    const { keyv, errors } = keyvOn(store, off)
    t.true(await keyv.set('obj', value, 60_000))
    const back = await keyv.get('obj')
    t.deepEqual(back, value)
    t.not(back, value, 'a copy out of shared memory')
    const raw = store.map.get('keyv:obj')
    t.deepEqual(raw.value, value, 'the map holds the envelope as JSON')
    t.is(typeof raw.expires, 'number')
    t.is(await keyv.set('big', 10n), false, 'JSON cannot hold a bigint')
    t.is(errors[0]?.code, 'ERR_LRUKIT_INVALID_VALUE')
    // A handle opened without json: true refuses objects; the adapter reports it, stores nothing.
    const other = keyvOn(plain, off)
    t.false(await other.keyv.set('obj2', value))
    t.is(other.errors[0]?.code, 'ERR_LRUKIT_INVALID_VALUE')
    t.deepEqual(await other.keyv.get('obj'), value, 'it still reads what the json handle stored')

    const lru = keyvOn(new KeyvLruCache(), off)
    t.true(await lru.keyv.set('obj', value))
    t.is(await lru.keyv.get('obj'), value, 'an LruCache keeps the very object')
    t.deepEqual(store.map.verify(), { ok: true, problems: [] })
  } finally {
    await store.disconnect()
    plain.map.close()
    SharedMap.unlink(name)
  }
})

test('options: defaults, what is passed through, what disconnect closes, invalid arguments', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const store = new KeyvSharedMap(name)
  try {
    t.is(store.map.stats().memoryBytes, SharedMap.calcRequiredMemorySize({ memorySize: 16 * 2 ** 20 }), '16 MiB by default')
    t.is(store.opts.memorySize, 16 * 2 ** 20)
    t.is(store.opts.json, true)
    t.is(store.opts.name, name)
    t.is(typeof store.opts.url, 'string', 'Keyv 5 reads opts.url of a store with an iterator')
    await store.disconnect()
    t.true(store.map.closed)
    t.true(SharedMap.unlink(name))

    const sized = new KeyvSharedMap(name, { capacity: 500, maxValueBytes: 2048, json: false })
    t.is(sized.opts.memorySize, undefined, 'no default memorySize when capacity is given')
    t.is(sized.map.stats().memoryBytes, SharedMap.calcRequiredMemorySize({ capacity: 500, maxValueBytes: 2048 }))
    const errors = []
    sized.on('error', (e) => errors.push(e.code))
    t.false(await sized.set('k', { a: 1 }), 'json: false is passed through')
    t.deepEqual(errors, ['ERR_LRUKIT_INVALID_VALUE'])
    await sized.disconnect()
  } finally {
    SharedMap.unlink(name)
  }

  const lru = new KeyvLruCache()
  t.is(lru.cache.capacity, 10_000)
  await lru.set('k', 'v')
  const given = new LruCache({ capacity: 3 })
  const onGiven = new KeyvLruCache(given)
  t.is(onGiven.cache, given)
  await onGiven.set('k', 'v')
  await lru.disconnect()
  await onGiven.disconnect()
  t.is(lru.cache.size, 0, 'disconnect empties a cache the adapter made')
  t.is(given.get('k'), 'v', 'and leaves a given one alone')
  t.is(new KeyvLruCache({ ttl: 5000 }).cache.capacity, 10_000)

  t.throws(() => new KeyvSharedMap(42), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new KeyvSharedMap(given), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new KeyvSharedMap(name, 'big'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new KeyvLruCache('x'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new KeyvLruCache({ capacity: 0 }), { code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  t.throws(() => new KeyvSharedMap('bad name!'), { code: 'ENAME' })
})
