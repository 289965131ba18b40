// lrukit/keyv with Redis (ava under Node, bun test under Bun): cacheable and cache-manager over a
// KeyvSharedMap L1 and a @keyv/redis L2, and KeyvSharedMap's cross-host invalidation. Everything
// is real: redis-server instances started per test on free ports (and stopped in `finally`, also
// on failure), child processes for the processes of simulated hosts (a host = a map name), real
// shared memory. Redis commands are counted with INFO commandstats. Skipped, visibly, when
// redis-server is not on PATH.
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import KeyvRedis from '@keyv/redis'
import { createClient } from '@redis/client'
import { Cacheable } from 'cacheable'
import Keyv from 'keyv'
import { SharedMap } from 'lrukit'
import { KeyvSharedMap } from 'lrukit/keyv'

import { dataCommandCalls, findRedisServer, startRedis } from './fixtures/redis-server.mjs'
import { isBun, runProcess, test } from './test.framework.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const hostScript = fileURLToPath(new URL('./fixtures/redis-host.mjs', import.meta.url))
const redisServer = findRedisServer()
const skipped = isBun ? (await import('bun:test')).test.skip : (await import('ava')).default.skip
/** A test that needs redis-server: shown as skipped, with the reason, when it is missing. */
const redisTest = redisServer ? test.serial : (name, fn) => skipped(`${name} — skipped: redis-server is not on PATH`, fn)

let counter = 0
/** A map name unique to this test process and runtime (at most 24 characters). */
const uniqueName = (tag) => `${tag}${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`
const now = () => performance.timeOrigin + performance.now()

/** Starts `count` redis-servers, runs `fn(...servers)`, and stops them all, whatever happens. */
async function withRedis(count, fn) {
  const servers = []
  try {
    for (let i = 0; i < count; i++) servers.push(await startRedis())
    return await fn(...servers)
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
}

/** Unlinks the maps afterwards (they are made by children and by this process). */
async function withMaps(names, fn) {
  for (const name of names) SharedMap.unlink(name)
  try {
    return await fn(...names)
  } finally {
    for (const name of names) SharedMap.unlink(name)
  }
}

/**
 * Starts one host process (fixtures/redis-host.mjs) and resolves once its store is ready.
 * `host.call(op, args)` sends a command and resolves with the reply; `host.exit()` resolves with
 * the exit code; `host.fatals` collects unhandled rejections and uncaught exceptions.
 */
function startHost(config, processes) {
  const child = spawn(process.execPath, [hostScript, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] })
  processes.push(child)
  const waiting = new Map()
  const fatals = []
  let buffer = ''
  let next = 0
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)))
  let startedResolve
  const started = new Promise((resolve, reject) => {
    startedResolve = resolve
    exited.then((code) => reject(new Error(`host ${config.map} exited (${code}) before it started: ${JSON.stringify(fatals)}`)))
  })
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk) => {
    buffer += chunk
    let newline
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const message = JSON.parse(buffer.slice(0, newline))
      buffer = buffer.slice(newline + 1)
      if (message.fatal) fatals.push(message)
      else if (message.id === 'started') startedResolve()
      else {
        waiting.get(message.id)?.(message)
        waiting.delete(message.id)
      }
    }
  })
  const host = {
    child,
    fatals,
    call(op, args = {}, timeout = 20_000) {
      return new Promise((resolve, reject) => {
        const id = next++
        const timer = setTimeout(() => reject(new Error(`host ${config.map}: no reply to ${op} in ${timeout} ms`)), timeout)
        waiting.set(id, (message) => {
          clearTimeout(timer)
          if (message.error) reject(new Error(`host ${config.map}: ${op}: ${message.error}`))
          else resolve(message)
        })
        child.stdin.write(JSON.stringify({ id, op, ...args }) + '\n')
      })
    },
    async exit() {
      await host.call('exit')
      return exited
    },
  }
  return started.then(() => host)
}

/** Runs `fn(startHost)` and kills every host process still alive afterwards. */
async function withHosts(fn) {
  const processes = []
  try {
    return await fn((config) => startHost(config, processes))
  } finally {
    for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

/** Polls `probe()` until it returns a truthy value (resolved with it) or `ms` pass (rejected). */
async function until(probe, what, ms = 10_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Exits every host and checks that each exited 0 without an unhandled rejection or exception. */
async function exitAll(t, hosts) {
  for (const host of hosts) {
    t.is(await host.exit(), 0)
    t.deepEqual(host.fatals, [])
  }
}

// ---- cacheable and cache-manager over lrukit + Redis --------------------------------------------

redisTest('cacheable: a value set by one process is read by another process of the same host from the shared L1, with no Redis command', async (t) => {
  await withRedis(2, (redis, empty) =>
    withMaps([uniqueName('cs'), uniqueName('cs')], (map, otherMap) =>
      withHosts(async (start) => {
        const writer = await start({ map, l2: redis.url })
        t.true((await writer.call('set', { key: 'user:1', value: { name: 'Ada' }, ttl: 60_000 })).result)
        const before = await dataCommandCalls(redis.port)
        t.true(before >= 1, 'the write reached Redis')
        // Same host (same map), but its L2 is another, empty Redis: the value can only come from the L1.
        const reader = await start({ map, l2: empty.url })
        t.deepEqual((await reader.call('get', { key: 'user:1' })).value, { name: 'Ada' })
        t.is(await dataCommandCalls(redis.port), before, 'no command on the Redis that holds it')
        t.is(await dataCommandCalls(empty.port), 0, 'no command on the reader’s own Redis either')
        // Control: another host with the same empty L2 misses, and its miss does reach Redis.
        const elsewhere = await start({ map: otherMap, l2: empty.url })
        t.is((await elsewhere.call('get', { key: 'user:1' })).value, null)
        t.true((await dataCommandCalls(empty.port)) >= 1, 'an L1 miss is a Redis command')
        await exitAll(t, [writer, reader, elsewhere])
      }),
    ),
  )
})

redisTest('cacheable: an L1 miss is read from Redis and back-filled into the L1 with the TTL left in Redis', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('cf'), uniqueName('cf')], async (mapA, mapB) => {
      const l1A = new KeyvSharedMap(mapA, { memorySize: 2 ** 20 })
      const mapHandle = SharedMap.openOrCreate(mapB, { memorySize: 2 ** 20, json: true })
      // Record the writes the back-fill makes on host B's map (the calls still run).
      const sets = []
      const recorded = new Proxy(mapHandle, {
        get(target, key) {
          const value = Reflect.get(target, key)
          if (key !== 'set' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value
          return (...args) => (sets.push(args), value.apply(target, args))
        },
      })
      const l1B = new KeyvSharedMap(recorded)
      const secondaryA = new KeyvRedis(redis.url)
      const secondaryB = new KeyvRedis(redis.url)
      try {
        const a = new Cacheable({ primary: new Keyv({ store: l1A }), secondary: secondaryA, ttl: '1h' })
        const b = new Cacheable({ primary: new Keyv({ store: l1B }), secondary: secondaryB, ttl: '1h' })
        // 5 s in Redis, 1 h in A's L1 (cacheable's per-store ttl).
        t.true(await a.set('page', '<html>', { ttl: { primary: '1h', secondary: 5000 } }))
        const written = now()
        const inRedis = await new Keyv({ store: secondaryA }).get('page', { raw: true })
        t.is(inRedis.value, '<html>')
        t.true(inRedis.expires > Date.now() + 4000 && inRedis.expires <= Date.now() + 5000)
        const calls = await dataCommandCalls(redis.port)
        t.is(await b.get('page'), '<html>')
        const read = now()
        t.is(await dataCommandCalls(redis.port), calls + 1, 'one Redis read')
        const fills = sets.filter(([key]) => key === 'keyv:page')
        t.is(fills.length, 1, 'back-filled once')
        const [, raw, options] = fills[0]
        // The TTL left in Redis, not b's 1 h default: at most 5 s minus the time since the write.
        t.true(options.ttl <= 5000 - Math.floor(read - written) + 1 && options.ttl > 4000, `back-fill ttl ${options.ttl}`)
        t.true(Math.abs(JSON.parse(raw).expires - inRedis.expires) <= 2, 'the L1 entry expires with the Redis one')
        // Now an L1 hit: no more Redis commands.
        t.is(await b.get('page'), '<html>')
        t.is(await dataCommandCalls(redis.port), calls + 1)
        t.deepEqual(mapHandle.verify(), { ok: true, problems: [] })
      } finally {
        await Promise.allSettled([secondaryA.disconnect(), secondaryB.disconnect(), l1A.disconnect()])
        mapHandle.close()
      }
    }),
  )
})

redisTest('cache-manager: the L1 is shared by the processes of a host; get reads Redis on a miss without back-filling, wrap back-fills', async (t) => {
  await withRedis(2, (redis, empty) =>
    withMaps([uniqueName('cm'), uniqueName('cm')], (map, otherMap) =>
      withHosts(async (start) => {
        const writer = await start({ map, l2: redis.url, tier: 'cache-manager' })
        await writer.call('set', { key: 'k', value: 'v', ttl: 60_000 })
        const before = await dataCommandCalls(redis.port)
        const sameHost = await start({ map, l2: empty.url, tier: 'cache-manager' })
        t.is((await sameHost.call('get', { key: 'k' })).value, 'v')
        t.is(await dataCommandCalls(redis.port), before)
        t.is(await dataCommandCalls(empty.port), 0)

        const otherHost = await start({ map: otherMap, l2: redis.url, tier: 'cache-manager' })
        t.is((await otherHost.call('get', { key: 'k' })).value, 'v', 'read from Redis')
        t.is(await dataCommandCalls(redis.port), before + 1)
        t.is((await otherHost.call('l1', { key: 'k' })).entry, null, 'cache-manager’s get does not back-fill')
        const wrapped = await otherHost.call('wrap', { key: 'k', value: 'loader', ttl: 60_000 })
        t.deepEqual(wrapped, { id: wrapped.id, value: 'v', loaded: false })
        t.is((await otherHost.call('l1', { key: 'k' })).entry?.value, 'v', 'wrap back-fills the stores before the one that hit')
        const calls = await dataCommandCalls(redis.port)
        t.is((await otherHost.call('get', { key: 'k' })).value, 'v')
        t.is(await dataCommandCalls(redis.port), calls, 'then an L1 hit')
        await exitAll(t, [writer, sameHost, otherHost])
      }),
    ),
  )
})

// ---- cross-host invalidation --------------------------------------------------------------------

redisTest('invalidation: a write through cacheable on host A reaches both processes of host B within 100 ms', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('ia'), uniqueName('ib')], (mapA, mapB) =>
      withHosts(async (start) => {
        const config = { l2: redis.url, bus: redis.url }
        const a = await start({ map: mapA, ...config })
        const b1 = await start({ map: mapB, ...config })
        const b2 = await start({ map: mapB, ...config })
        const latencies = []
        for (let round = 0; round < 5; round++) {
          const old = `v${round}`
          const next = `v${round + 1}`
          if (round === 0) {
            await a.call('set', { key: 'k', value: old, ttl: 60_000 })
            t.is((await b1.call('get', { key: 'k' })).value, old)
          }
          t.is((await b2.call('get', { key: 'k' })).value, old)
          t.is((await b2.call('l1', { key: 'k' })).entry?.value, old, 'host B holds the old value in its L1')
          // Both processes of B read k through cacheable every millisecond until they read `next`.
          const token = `r${round}`
          await b1.call('poll', { key: 'k', value: next, token })
          await b2.call('poll', { key: 'k', value: next, token })
          const { at: setAt } = await a.call('set', { key: 'k', value: next, ttl: 60_000 })
          for (const b of [b1, b2]) {
            const seen = await b.call('pollResult', { token })
            t.true(seen.seen, `round ${round}: host B still read ${JSON.stringify(seen.last)}`)
            latencies.push(seen.at - setAt)
          }
          t.is((await b2.call('l1', { key: 'k' })).entry?.value, next, 'B’s L1 holds the new value again')
        }
        const worst = Math.max(...latencies)
        const sorted = [...latencies].sort((x, y) => x - y)
        t.log(`A's set resolved → B read the new value: median ${sorted[sorted.length >> 1].toFixed(2)} ms, max ${worst.toFixed(2)} ms (${latencies.length} reads)`)
        t.true(worst < 100, `latencies ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`)
        await exitAll(t, [a, b1, b2])
      }),
    ),
  )
})

redisTest('invalidation: the second process of a host reads a key the first one brought in from Redis without a Redis command', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('ra'), uniqueName('rb')], (mapA, mapB) =>
      withHosts(async (start) => {
        const config = { l2: redis.url, bus: redis.url }
        const a = await start({ map: mapA, ...config })
        const b1 = await start({ map: mapB, ...config })
        const b2 = await start({ map: mapB, ...config })
        await a.call('set', { key: 'report', value: { rows: 3 }, ttl: 60_000 })
        const before = await dataCommandCalls(redis.port)
        t.deepEqual((await b1.call('get', { key: 'report' })).value, { rows: 3 })
        const afterFirst = await dataCommandCalls(redis.port)
        t.is(afterFirst, before + 1, 'the first process of B read it from Redis')
        t.deepEqual((await b2.call('l1', { key: 'report' })).entry?.value, { rows: 3 }, 'and back-filled the host’s L1')
        t.deepEqual((await b2.call('get', { key: 'report' })).value, { rows: 3 })
        t.is(await dataCommandCalls(redis.port), afterFirst, 'the second process read it from the L1')
        await exitAll(t, [a, b1, b2])
      }),
    ),
  )
})

redisTest('invalidation: keys and namespace clears are published, values never; the same host (another process) ignores its own messages', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('ma'), uniqueName('mb')], (mapA, mapB) =>
      withHosts(async (start) => {
        const captured = []
        const spy = createClient({ url: redis.url })
        spy.on('error', () => {})
        await spy.connect()
        await spy.subscribe('lrukit:invalidate', (message) => captured.push(JSON.parse(message)))
        // Host B in this process: two Keyv namespaces on one store.
        const storeB = new KeyvSharedMap(mapB, { memorySize: 2 ** 20, invalidation: { url: redis.url } })
        try {
          t.true(await storeB.ready())
          const appB = new Keyv({ store: storeB, namespace: 'keyv' })
          const otherB = new Keyv({ store: storeB, namespace: 'other' })
          await appB.set('secret', 'B-copy')
          await appB.set('kept', 1)
          await otherB.set('x', 'other namespace')
          await until(() => captured.some((m) => m.keys?.some(([key]) => key === 'other:x')), 'host B’s own messages')
          captured.length = 0
          const a1 = await start({ map: mapA, l2: redis.url, bus: redis.url })
          const a2 = await start({ map: mapA, l2: redis.url, bus: redis.url })

          await a1.call('set', { key: 'secret', value: 'TOPSECRET-9f3', ttl: 60_000 })
          await until(() => captured.length >= 1, 'the set message')
          const [setMessage] = captured
          t.deepEqual(
            setMessage.keys.map(([key]) => key),
            ['keyv:secret'],
          )
          t.is(typeof setMessage.keys[0][1], 'string', 'with a fingerprint of the value')
          t.false(JSON.stringify(captured).includes('TOPSECRET'), 'never the value')
          // Host B dropped its copy; host A's other process ignored the message: A's L1 keeps the write.
          await until(() => !storeB.map.has('keyv:secret'), 'host B to drop the key')
          const a2State = await until(async () => {
            const { invalidation } = await a2.call('state')
            return invalidation.stats.ignored >= 1 && invalidation
          }, 'A2 to receive A1’s message')
          t.is(a2State.stats.dropped, 0)
          t.is((await a2.call('l1', { key: 'secret' })).entry?.value, 'TOPSECRET-9f3', 'A’s L1 still holds A1’s write')
          t.is((await a1.call('state')).invalidation.mapId, a2State.mapId, 'one id for the host’s map')
          t.not(storeB.invalidation.mapId, a2State.mapId)

          captured.length = 0
          await a1.call('del', { key: 'secret' })
          await until(() => captured.length >= 1, 'the delete message')
          t.deepEqual(captured[0].keys, [['keyv:secret', null]])

          captured.length = 0
          await a1.call('clear')
          await until(() => captured.some((m) => m.clear), 'the clear message')
          t.deepEqual(
            captured.find((m) => m.clear).clear,
            ['keyv'],
          )
          await until(() => !storeB.map.has('keyv:kept'), 'host B to clear the namespace')
          t.is(await otherB.get('x'), 'other namespace', 'another namespace is kept')
          // The clear left a namespace tombstone: a fill of one of its keys is refused for a while.
          t.is(await appB.get('kept'), undefined)
          t.true(await appB.set('kept', 'a stale fill'))
          t.false(storeB.map.has('keyv:kept'))
          t.is(storeB.invalidation.stats.refused, 1)

          // Keyv deleting an entry it found expired is local clean-up: not published.
          captured.length = 0
          storeB.map.set('other:stale', JSON.stringify({ value: 1, expires: Date.now() - 1 }))
          t.is(await otherB.get('stale'), undefined)
          t.false(storeB.map.has('other:stale'))
          // Fills — sets right after this process missed the key — are stored, not published.
          t.true(await otherB.set('stale', 2))
          t.is(await otherB.get('absent'), undefined)
          t.true(await otherB.set('absent', 3))
          t.deepEqual(await otherB.get(['stale', 'absent']), [2, 3])
          t.is(storeB.invalidation.stats.refused, 1)
          await otherB.set('marker', 1) // a write, published after the others would have been
          await until(() => captured.length >= 1, 'the marker message')
          t.deepEqual(
            captured.flatMap((m) => (m.keys ?? []).map(([key]) => key)),
            ['other:marker'],
          )
          await exitAll(t, [a1, a2])
        } finally {
          await storeB.disconnect()
          spy.destroy()
        }
      }),
    ),
  )
})

/** Host B in this process: its store, cacheable over it and the L2 Keyv it reads from. */
function hostB(map, redis, invalidation = {}) {
  const store = new KeyvSharedMap(map, { memorySize: 2 ** 20, invalidation: { url: redis.url, ...invalidation } })
  const l2 = new Keyv({ store: new KeyvRedis(redis.url) })
  const cache = new Cacheable({ primary: new Keyv({ store }), secondary: l2 })
  const invalidated = (key) =>
    new Promise((resolve) => {
      const at = now()
      store.on('invalidate', function listener(event) {
        if (!event.keys.includes(key)) return
        store.off('invalidate', listener)
        resolve(now() - at)
      })
    })
  return { store, l2, cache, invalidated, close: () => Promise.allSettled([store.disconnect(), l2.disconnect()]) }
}

redisTest('invalidation race: a back-fill of a stale L2 value after an invalidation is refused for tombstoneMs; the host’s own writes go through', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('ta'), uniqueName('tb'), uniqueName('tc')], async (mapA, mapB, mapC) => {
      const storeA = new KeyvSharedMap(mapA, { memorySize: 2 ** 20, invalidation: { url: redis.url } })
      const primaryA = new Keyv({ store: storeA })
      const b = hostB(mapB, redis)
      const c = hostB(mapC, redis, { tombstoneMs: 0 }) // control: tombstones off
      try {
        t.true((await Promise.all([storeA.ready(), b.store.ready(), c.store.ready()])).every(Boolean))
        await b.l2.set('k', 'old')
        await b.l2.set('k4', 'old4')
        t.is(await b.cache.get('k'), 'old')
        t.is(await c.cache.get('k'), 'old')
        t.true(b.store.map.has('keyv:k') && c.store.map.has('keyv:k'), 'both hosts hold the old value')

        // Host A announces its write (L1 written, message out) before its L2 write lands.
        const dropped = Promise.all([b.invalidated('keyv:k'), c.invalidated('keyv:k'), b.invalidated('keyv:k4')])
        const announcedAt = now()
        await primaryA.set('k', 'new')
        await primaryA.set('k4', 'new4')
        await dropped
        t.false(b.store.map.has('keyv:k'))
        // A reader on B misses and reads the old value from L2 (unavoidable before the L2 write)...
        t.is(await b.cache.get('k'), 'old')
        // ...but the back-fill is refused: the old value does not settle in B's L1.
        t.false(b.store.map.has('keyv:k'), 'stale back-fill refused')
        // A value B never held, read after a miss, is refused too (it may predate the write).
        t.is(await b.cache.get('k4'), 'old4')
        t.false(b.store.map.has('keyv:k4'))
        t.is(b.store.invalidation.stats.refused, 2)
        // Without tombstones the stale value settles in the L1...
        t.is(await c.cache.get('k'), 'old')
        t.is(JSON.parse(c.store.map.get('keyv:k')).value, 'old', 'control: the stale back-fill stays')

        // The L2 write lands.
        await b.l2.set('k', 'new')
        t.is(await b.cache.get('k'), 'new')
        t.is(JSON.parse(b.store.map.get('keyv:k')).value, 'new', 'the announced value is back-filled at once')
        // ...and keeps being served from it, stale, until its TTL.
        t.is(await c.cache.get('k'), 'old', 'control: host C serves the stale value')

        // B's own write during the window goes through (it follows no miss of the key).
        t.true(await b.cache.set('k4', 'mine', 60_000))
        t.is(JSON.parse(b.store.map.get('keyv:k4')).value, 'mine', 'the host’s own write is stored')
        const elapsed = now() - announcedAt
        t.true(elapsed < 1000, `all within the 1000 ms window (${elapsed.toFixed(0)} ms)`)
        t.deepEqual(b.store.map.verify(), { ok: true, problems: [] })
      } finally {
        await Promise.allSettled([storeA.disconnect(), b.close(), c.close()])
      }
    }),
  )
})

redisTest('invalidation race: the tombstone lasts tombstoneMs (measured), then back-fills are accepted again', async (t) => {
  await withRedis(1, (redis) =>
    withMaps([uniqueName('wa'), uniqueName('wb')], async (mapA, mapB) => {
      const storeA = new KeyvSharedMap(mapA, { memorySize: 2 ** 20, invalidation: { url: redis.url } })
      const b = hostB(mapB, redis, { tombstoneMs: 150 })
      try {
        t.true((await Promise.all([storeA.ready(), b.store.ready()])).every(Boolean))
        await b.l2.set('k', 'old')
        const received = b.invalidated('keyv:k')
        await new Keyv({ store: storeA }).set('k', 'new')
        await received
        const start = now()
        t.is(await b.cache.get('k'), 'old')
        t.false(b.store.map.has('keyv:k'), 'refused inside the window')
        // Read until a back-fill is accepted (the old value: the L2 write never came).
        await until(async () => (await b.cache.get('k'), b.store.map.has('keyv:k')), 'a back-fill to be accepted', 5000)
        const window = now() - start
        t.log(`back-fills refused for ${window.toFixed(0)} ms after the message (tombstoneMs: 150)`)
        t.true(window >= 140 && window < 1500, `${window} ms`)
      } finally {
        await Promise.allSettled([storeA.disconnect(), b.close()])
      }
    }),
  )
})

redisTest('Redis killed mid-run: the L1 keeps serving, errors are events, nothing crashes; after the restart the namespace is cleared unless clearOnReconnect: false', async (t) => {
  await withMaps([uniqueName('ka'), uniqueName('kb'), uniqueName('kc')], (mapA, mapB, mapC) =>
    withHosts(async (start) => {
      let redis = await startRedis()
      try {
        const config = { l2: redis.url, bus: redis.url }
        const a = await start({ map: mapA, ...config })
        const b = await start({ map: mapB, ...config })
        const c = await start({ map: mapC, ...config, clearOnReconnect: false })
        await a.call('set', { key: 'k', value: 'v', ttl: 60_000 })
        for (const host of [b, c]) {
          t.is((await host.call('get', { key: 'k' })).value, 'v')
          t.true((await host.call('rawSet', { key: 'other:x', value: 'keep' })).result)
        }

        await redis.kill()
        for (const host of [b, c]) {
          t.is((await host.call('get', { key: 'k' })).value, 'v', 'served from the L1 with Redis down')
          await until(async () => (await host.call('state')).errors.length > 0, 'an error event')
        }
        const { errors } = await b.call('state')
        t.log(`error events while Redis is down: ${[...new Set(errors)].join(', ')}`)
        // A write to the L1 while the bus is away resolves; its announcement waits for Redis.
        const publishedBefore = (await b.call('state')).invalidation.stats.published
        t.true((await b.call('l1set', { key: 'during', value: 'outage' })).result)
        t.false((await b.call('state')).invalidation.connected)

        redis = await redis.restart()
        for (const host of [b, c]) {
          await until(async () => (await host.call('state')).invalidation.stats.reconnects >= 1, 'the subscriber to reconnect', 20_000)
        }
        t.is((await b.call('l1', { key: 'k' })).entry, null, 'B cleared its namespace on reconnect')
        t.is((await b.call('rawGet', { key: 'other:x' })).value, 'keep', 'and only its namespace')
        t.true((await b.call('state')).events.some((e) => e.reason === 'reconnect'))
        t.is((await c.call('l1', { key: 'k' })).entry?.value, 'v', 'C (clearOnReconnect: false) kept it')
        // B's announcement made during the outage is published once B's publisher is back (whether
        // A hears it depends on which of them reconnects first; A cleared its namespace anyway).
        await until(async () => (await b.call('state')).invalidation.stats.published > publishedBefore, 'the queued announcement', 20_000)
        for (const host of [a, b, c]) t.deepEqual(host.fatals, [])
        await exitAll(t, [a, b, c])
      } finally {
        await redis.stop()
      }
    }),
  )
})

redisTest('Redis unreachable from the start: the map serves, calls resolve, errors are events, no unhandled rejection, disconnect is prompt', async (t) => {
  // A port that nothing listens on: start a server, note its port, stop it.
  const gone = await startRedis()
  await gone.stop()
  const name = uniqueName('ud')
  SharedMap.unlink(name)
  const unhandled = []
  const onUnhandled = (error) => unhandled.push(error)
  process.on('unhandledRejection', onUnhandled)
  const store = new KeyvSharedMap(name, { memorySize: 2 ** 20, invalidation: { url: gone.url } })
  try {
    const keyv = new Keyv({ store })
    const errors = []
    keyv.on('error', (error) => errors.push(error?.code ?? error?.name))
    t.true(await keyv.set('a', 1))
    t.is(await keyv.get('a'), 1)
    t.true(await keyv.delete('a'))
    await keyv.clear()
    t.true(await keyv.set('b', 2))
    t.is(await Promise.race([store.ready(), new Promise((resolve) => setTimeout(() => resolve('pending'), 300))]), 'pending')
    await until(() => errors.length > 0, 'an error event')
    t.true(errors.includes('ECONNREFUSED'), errors.join())
    t.false(store.invalidation.connected)
    const started = Date.now()
    await store.disconnect()
    t.true(Date.now() - started < 2000, 'disconnect does not wait for Redis')
    t.is(await store.ready(), false, 'ready() settles false once disconnected')
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
    if (!store.map.closed) await store.disconnect()
    SharedMap.unlink(name)
  }
})

test('invalidation options are checked before anything opens; without @redis/client: ERR_LRUKIT_MISSING_PEER, and lrukit/keyv still loads', async (t) => {
  const name = uniqueName('op')
  SharedMap.unlink(name)
  for (const invalidation of [
    null,
    'redis://x',
    {},
    { url: '' },
    { url: 'redis://x', channel: '' },
    { url: 'redis://x', tombstoneMs: -1 },
    { url: 'redis://x', tombstoneMs: Number.NaN },
    { url: 'redis://x', clearOnReconnect: 'no' },
    { url: 'redis://x', tombstone: 5 },
  ]) {
    t.throws(() => new KeyvSharedMap(name, { invalidation }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
  t.false(SharedMap.unlink(name), 'no map was made')
  const map = SharedMap.create(name, { memorySize: 2 ** 20 })
  try {
    t.throws(() => new KeyvSharedMap(map, { memorySize: 5 }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
    const plain = new KeyvSharedMap(map, {})
    t.is(plain.invalidation, null)
    t.true(await plain.ready())
  } finally {
    map.close()
    SharedMap.unlink(name)
  }

  // A copy of the package with no node_modules anywhere above it: @redis/client cannot be found.
  const dir = mkdtempSync(join(tmpdir(), 'lrukit-nopeer-'))
  try {
    const pkg = join(dir, 'node_modules', 'lrukit')
    for (const file of ['package.json', 'index.js', 'native.js', 'keyv/index.js', 'keyv/index.mjs', 'keyv/invalidation.js']) {
      cpSync(join(root, file), join(pkg, file))
    }
    const addon = readdirSync(root).find((f) => f.endsWith('.node'))
    symlinkSync(join(root, addon), join(pkg, addon))
    const probe = join(dir, 'probe.mjs')
    writeFileSync(
      probe,
      `import { KeyvSharedMap } from 'lrukit/keyv'
const name = ${JSON.stringify(uniqueName('np'))}
const out = {}
const plain = new KeyvSharedMap(name, { memorySize: 2 ** 20 })
out.plain = await plain.set('k', 'v')
await plain.disconnect()
try { new KeyvSharedMap(name, { invalidation: { url: 'redis://127.0.0.1:1' } }) } catch (e) { out.code = e.code; out.message = e.message }
try { await import('@redis/client'); out.found = true } catch { out.found = false }
const { SharedMap } = await import('lrukit')
out.unlinked = SharedMap.unlink(name)
console.log(JSON.stringify(out))
`,
    )
    const { code, out } = await runProcess(process.execPath, [probe])
    t.is(code, 0)
    const result = JSON.parse(out)
    t.false(result.found, 'the copy cannot see @redis/client')
    t.true(result.plain, 'lrukit/keyv works without it')
    t.is(result.code, 'ERR_LRUKIT_MISSING_PEER')
    t.true(result.message.includes('npm install @redis/client'), result.message)
    t.true(result.unlinked, 'the failed constructor left the map usable (and it was made)')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
