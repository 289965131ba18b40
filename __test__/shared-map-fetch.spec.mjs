// SharedMap.fetch with real processes: one loader call per key per host, a killed owner taken
// over, a rejected loader retried by a waiter, stale-while-revalidate across processes (on the
// maps' injected clocks), in-process coalescing, LruCache.fetch, and the argument errors.
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import { LruCache, SharedMap } from 'lrukit'

import { isBun, test } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const native = require('../native.js')
const child = fileURLToPath(new URL('./fixtures/fetch-child.mjs', import.meta.url))
let counter = 0
const uniqueName = (tag) => `${tag}${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`

function withMap(tag, options, fn) {
  const name = uniqueName(tag)
  SharedMap.unlink(name)
  const map = SharedMap.create(name, options)
  return Promise.resolve(fn(map, name)).finally(() => {
    map.close()
    SharedMap.unlink(name)
  })
}

/** Forks the fixture with `args`; `messages()` yields what it sends, `kill()` SIGKILLs it. */
function spawnChild(args) {
  const p = fork(child, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const queue = []
  const wanted = []
  p.on('message', (m) => (wanted.length ? wanted.shift()(m) : queue.push(m)))
  const exited = new Promise((resolve) => p.on('exit', resolve))
  return {
    next: (timeout = 20_000) =>
      queue.length
        ? Promise.resolve(queue.shift())
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no message from ${args.join(' ')} in ${timeout} ms`)), timeout)
            wanted.push((m) => {
              clearTimeout(timer)
              resolve(m)
            })
          }),
    send: (m) => p.send(m),
    kill: () => p.kill('SIGKILL'),
    exited,
    pid: p.pid,
  }
}

test.serial('4 processes × 250 concurrent fetches over 20 keys: exactly one loader call per key', async (t) => {
  await withMap('fc', { capacity: 1000 }, async (map, name) => {
    const kids = Array.from({ length: 4 }, () => spawnChild(['coalesce', name, '20', '250', '50']))
    for (const k of kids) t.is(await k.next(), 'ready')
    for (const k of kids) k.send('go')
    const results = await Promise.all(kids.map((k) => k.next(60_000)))
    for (const r of results) t.true(r.allRight, 'every fetch resolved with its key\'s value')
    t.is(map.get('calls'), 20, 'one loader call per key across all processes')
    const all = results.flatMap((r) => r.latencies).sort((a, b) => a - b)
    t.is(all.length, 1000)
    t.log(`latency p50 ${all[500].toFixed(1)} ms, p99 ${all[990].toFixed(1)} ms (loader 50 ms)`)
    await Promise.all(kids.map((k) => k.exited))
  })
})

test.serial('an owner SIGKILLed mid-load is taken over by a waiting process long before lockTimeout', async (t) => {
  await withMap('fk', { capacity: 100 }, async (map, name) => {
    const owner = spawnChild(['hang', name, 'slow'])
    t.is(await owner.next(), 'loading')
    let loads = 0
    const start = performance.now()
    const waiting = map.fetch('slow', async () => {
      loads++
      return 'taken over'
    })
    // The owner is alive: this process waits.
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.is(loads, 0, 'no second loader while the owner lives')
    const killedAt = performance.now()
    owner.kill()
    t.is(await waiting, 'taken over')
    t.is(loads, 1)
    const takeover = performance.now() - killedAt
    t.log(`taken over ${takeover.toFixed(1)} ms after the owner died (lockTimeout 10000 ms)`)
    t.true(takeover < 2000, `took ${takeover} ms`)
    t.true(performance.now() - start < 10_000)
    t.is(map.get('slow'), 'taken over')
  })
})

test.serial('a rejected loader rejects its own caller; a waiting process retries by loading', async (t) => {
  await withMap('fr', { capacity: 100 }, async (map, name) => {
    const owner = spawnChild(['reject', name, 'k', '40'])
    t.is(await owner.next(), 'loading')
    let loads = 0
    const value = await map.fetch('k', async () => {
      loads++
      return 'second try'
    })
    t.deepEqual(await owner.next(), { error: 'loader failed' }, 'the owner gets its loader\'s error')
    t.is(value, 'second try')
    t.is(loads, 1)
    t.is(map.get('k'), 'second try')
  })
})

test.serial('stale-while-revalidate across processes: the stale value at once, one refresh', async (t) => {
  await withMap('fs', { capacity: 100 }, async (map, name) => {
    const T0 = 1_800_000_000_000
    native.debugSetClock(map, T0)
    t.is(await map.fetch('k', () => 'v1', { ttl: 100, staleWhileRevalidate: 1000 }), 'v1')
    // 500 ms later on every clock: past the soft TTL, inside the stale window.
    const a = spawnChild(['fetch', name, 'k', 'v2', String(T0 + 500), '1000', '100'])
    const r = await a.next()
    t.deepEqual(r, { value: 'v1', ms: r.ms, loaded: true }, 'stale value returned; this process won the refresh')
    await a.exited
    native.debugSetClock(map, T0 + 510)
    t.is(await map.fetch('k', () => 'v3', { ttl: 100, staleWhileRevalidate: 1000 }), 'v2', 'the refreshed value, fresh')
    // Past the hard TTL of the refreshed value (T0+500 + 100 + 1000): a miss, loaded here.
    native.debugSetClock(map, T0 + 1700)
    t.is(await map.fetch('k', () => 'v4', { ttl: 100, staleWhileRevalidate: 1000 }), 'v4')
  })
})

test('in-process: concurrent fetches share one loader call; undefined stores nothing; errors reject', async (t) => {
  await withMap('fi', { capacity: 100 }, async (map) => {
    let calls = 0
    const loader = async (key) => {
      calls++
      await new Promise((resolve) => setTimeout(resolve, 10))
      return `v:${key}`
    }
    const values = await Promise.all([map.fetch('a', loader), map.fetch('a', loader), map.fetch('b', loader)])
    t.deepEqual(values, ['v:a', 'v:a', 'v:b'])
    t.is(calls, 2)
    t.is(await map.fetch('a', loader), 'v:a')
    t.is(calls, 2, 'a hit calls no loader')
    t.deepEqual([...map.keys()].sort(), ['a', 'b'], 'claims are not listed')
    t.is(await map.fetch('u', () => undefined), undefined)
    t.false(map.has('u'))
    const refused = await map.fetch('o', () => ({ an: 'object' })).catch((e) => e)
    t.is(refused.code, 'ERR_LRUKIT_INVALID_VALUE', 'a value the map refuses rejects with its error')
    t.is(await map.fetch('o', () => 'next'), 'next', 'and the claim was given back')
    const bad = await map.fetch('x', 'not a function').catch((e) => e)
    t.true(bad instanceof TypeError)
    t.is(bad.code, 'ERR_LRUKIT_INVALID_ARGUMENT')
    const badKey = await map.fetch({}, loader).catch((e) => e)
    t.is(badKey.code, 'ERR_LRUKIT_INVALID_KEY')
    const badSwr = await map.fetch('y', loader, { staleWhileRevalidate: -1 }).catch((e) => e)
    t.true(badSwr instanceof RangeError)
    t.is(badSwr.code, 'ERR_LRUKIT_INVALID_TTL')
    const badLock = await map.fetch('y', loader, { lockTimeout: 0 }).catch((e) => e)
    t.is(badLock.code, 'ERR_LRUKIT_INVALID_TIMEOUT')
  })
})

test('LruCache.fetch: coalescing, TTL and stale-while-revalidate on the manual clock', async (t) => {
  const cache = new LruCache({ capacity: 10, clock: 'manual' })
  let calls = 0
  let next = 'v1'
  const loader = async () => {
    calls++
    await new Promise((resolve) => setTimeout(resolve, 5))
    return next
  }
  const o = { ttl: 100, staleWhileRevalidate: 50 }
  t.deepEqual(await Promise.all([cache.fetch('k', loader, o), cache.fetch('k', loader, o)]), ['v1', 'v1'])
  t.is(calls, 1)
  t.is(cache.getRemainingTTL('k'), 150, 'kept ttl + staleWhileRevalidate')
  cache.advanceTime(120)
  next = 'v2'
  const refreshes = [cache.fetch('k', loader, o), cache.fetch('k', loader, o)]
  t.deepEqual(await Promise.all(refreshes), ['v1', 'v1'], 'stale values at once')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.is(calls, 2, 'one background refresh')
  t.is(await cache.fetch('k', loader, o), 'v2')
  cache.advanceTime(200)
  next = 'v3'
  t.is(await cache.fetch('k', loader, o), 'v3', 'past the hard TTL: loaded again')
  t.is(cache.getRemainingTTL('missing'), 0)
  cache.set('forever', 1)
  t.is(cache.getRemainingTTL('forever'), Infinity)
  const failing = cache.fetch('f', async () => {
    throw new Error('nope')
  })
  const failed = await failing.catch((e) => e)
  t.is(failed.message, 'nope', 'a loader that throws rejects its caller')
  t.false(cache.has('f'))
  const bad = await cache.fetch('k', loader, { staleWhileRevalidate: 'x' }).catch((e) => e)
  t.true(bad instanceof TypeError)
  t.is(bad.code, 'ERR_LRUKIT_INVALID_TTL')
})
