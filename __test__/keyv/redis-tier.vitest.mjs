// cacheable over a KeyvSharedMap L1 and a @keyv/redis L2 on a fake clock (Date only: the Redis
// client's timers and the map's own TTL stay real): an L1 miss back-fills the L1 with the TTL
// left in Redis, which shrinks as time passes. Needs redis-server on PATH (skipped, with the
// reason, without it); the server is started on a free port and stopped afterwards.
import KeyvRedis from '@keyv/redis'
import { Cacheable } from 'cacheable'
import Keyv from 'keyv'
import { SharedMap } from 'lrukit'
import { KeyvSharedMap } from 'lrukit/keyv'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

import { findRedisServer, startRedis } from '../fixtures/redis-server.mjs'

const hasRedis = findRedisServer() !== null
const tag = process.pid.toString(36)

describe.skipIf(!hasRedis)('cacheable back-fill on a fake clock (redis-server not on PATH: skipped)', () => {
  let redis
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('a back-fill 4 s after a 10 s write gets the 6 s left, and the L1 entry expires with the Redis one', async () => {
    const [nameA, nameB] = [`rtva-${tag}`, `rtvb-${tag}`]
    for (const name of [nameA, nameB]) SharedMap.unlink(name)
    const storeA = new KeyvSharedMap(nameA, { memorySize: 2 ** 20 })
    const storeB = new KeyvSharedMap(nameB, { memorySize: 2 ** 20 })
    const [redisA, redisB] = [new KeyvRedis(redis.url), new KeyvRedis(redis.url)]
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() })
    try {
      const a = new Cacheable({ primary: new Keyv({ store: storeA }), secondary: redisA })
      const b = new Cacheable({ primary: new Keyv({ store: storeB }), secondary: redisB, ttl: '1h' })
      const start = Date.now()
      expect(await a.set('doc', { v: 1 }, 10_000)).toBe(true)
      vi.setSystemTime(start + 4000)
      const sets = vi.spyOn(storeB.map, 'set')
      expect(await b.get('doc')).toEqual({ v: 1 })
      expect(sets).toHaveBeenCalledTimes(1)
      const [key, raw, options] = sets.mock.calls[0]
      expect(key).toBe('keyv:doc')
      expect(options).toEqual({ ttl: 6000 })
      expect(JSON.parse(raw)).toEqual({ value: { v: 1 }, expires: start + 10_000 })
      // Later still: what is left keeps shrinking for the next host that misses.
      storeB.map.delete('keyv:doc')
      vi.setSystemTime(start + 9000)
      expect(await b.get('doc')).toEqual({ v: 1 })
      expect(sets.mock.calls[1][2]).toEqual({ ttl: 1000 })
    } finally {
      vi.useRealTimers()
      await Promise.allSettled([redisA.disconnect(), redisB.disconnect(), storeA.disconnect(), storeB.disconnect()])
      for (const name of [nameA, nameB]) SharedMap.unlink(name)
    }
  })
})
