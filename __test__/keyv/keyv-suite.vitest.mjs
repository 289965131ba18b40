// The unmodified @keyv/test-suite (2.1.2) against both adapters, with the Keyv it expects (5.x).
// Every store() of a describe block shares one LruCache or one SharedMap segment, so the
// namespace tests really check that clear() only removes its namespace. The SharedMap segments
// are unlinked afterwards, and the last test checks that none is left (in /dev/shm on Linux).
import keyvTestSuite from '@keyv/test-suite'
import Keyv from 'keyv'
import { LruCache, SharedMap } from 'lrukit'
import { KeyvLruCache, KeyvSharedMap } from 'lrukit/keyv'
import * as test from 'vitest'

const { afterAll, describe, expect, it, vi } = test
const tag = `${process.pid.toString(36)}`

describe('KeyvLruCache over one LruCache', () => {
  const cache = new LruCache({ capacity: 10_000 })
  keyvTestSuite(test, Keyv, () => new KeyvLruCache(cache))
})

describe('KeyvSharedMap by name (each store() opens its own handle)', () => {
  const name = `kvsuite-a-${tag}`
  SharedMap.unlink(name)
  const stores = []
  keyvTestSuite(test, Keyv, () => {
    const store = new KeyvSharedMap(name, { memorySize: 4 * 2 ** 20 })
    stores.push(store)
    return store
  })
  afterAll(async () => {
    for (const store of stores) await store.disconnect()
    expect(stores.every((store) => store.map.closed)).toBe(true)
    SharedMap.unlink(name)
  })
})

describe('KeyvSharedMap over one open SharedMap', () => {
  const name = `kvsuite-b-${tag}`
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { memorySize: 4 * 2 ** 20, json: true })
  keyvTestSuite(test, Keyv, () => new KeyvSharedMap(map))
  afterAll(() => {
    expect(map.closed).toBe(false)
    expect(map.verify()).toEqual({ ok: true, problems: [] })
    map.close()
    SharedMap.unlink(name)
  })
})

describe('expiry through Keyv on a fake clock', () => {
  it('an entry past its ttl is a miss, and Keyv deletes it from the store', async () => {
    const name = `kvsuite-c-${tag}`
    SharedMap.unlink(name)
    const store = new KeyvSharedMap(name, { memorySize: 2 ** 20 })
    const keyv = new Keyv({ store, namespace: 'ttl' })
    vi.useFakeTimers({ now: Date.now() })
    try {
      const start = Date.now()
      expect(await keyv.set('a', 'x', 1000)).toBe(true)
      expect(await keyv.set('b', 'y')).toBe(true)
      // The map holds Keyv's serialized envelope; Keyv's expiry is its `expires`.
      expect(JSON.parse(store.map.get('ttl:a')).expires).toBe(start + 1000)
      vi.setSystemTime(start + 999)
      expect(await keyv.get('a')).toBe('x')
      vi.setSystemTime(start + 1001)
      expect(await keyv.get('a')).toBeUndefined()
      expect(store.map.has('ttl:a')).toBe(false)
      expect(await keyv.get('b')).toBe('y')
    } finally {
      vi.useRealTimers()
      await store.disconnect()
      SharedMap.unlink(name)
    }
  })

  it('a negative ttl (already expired) deletes the key', async () => {
    const store = new KeyvLruCache()
    await store.set('k', 'v')
    expect(await store.set('k', 'v2', -1)).toBe(true)
    expect(await store.has('k')).toBe(false)
  })
})

describe('no segment is left behind', () => {
  it('every map these suites made is unlinked', () => {
    // afterAll hooks of the describe blocks above have run by now (vitest runs blocks in order).
    // unlink() is false for a name that does not exist
    for (const name of ['a', 'b', 'c'].map((x) => `kvsuite-${x}-${tag}`)) expect(SharedMap.unlink(name)).toBe(false)
  })
})
