// `node examples/two-hosts.mjs`: two hosts, two processes each, one Redis — lrukit's SharedMap as
// each host's L1 (shared by its processes), Redis as the L2 and as the invalidation bus.
//
// A "host" here is a SharedMap name (`two-hosts-a`, `two-hosts-b`): processes that open the same
// name share one L1, exactly as the processes of one machine would. The script starts its own
// redis-server on a free port (`--save '' --appendonly no`), forks the four processes, and shows:
//   1. a write on host A, read on host B: the first process of B reads Redis and back-fills B's L1;
//      the second process of B reads it from the L1 (no Redis command: INFO commandstats);
//   2. a second write on A reaching both processes of B (each polls through cacheable until it
//      reads the new value; the time from A's set resolving is printed);
//   3. A's other process reading A's own write from the L1 (it ignored A's message: same map).
// It exits 0 when all of that held, 1 otherwise. Needs redis-server on PATH.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const [role, ...args] = process.argv.slice(2)
if (role === 'worker') await worker(...args)
else await main()

async function main() {
  const { SharedMap } = await import('lrukit')
  const { commandCalls, findRedisServer, startRedis } = await import('../__test__/fixtures/redis-server.mjs')
  if (!findRedisServer()) {
    console.error('two-hosts: redis-server is not on PATH (apt-get install redis-server, brew install redis)')
    process.exit(1)
  }
  const maps = { a: 'two-hosts-a', b: 'two-hosts-b' }
  for (const name of Object.values(maps)) SharedMap.unlink(name)
  const redis = await startRedis()
  const workers = []
  let ok = true
  const check = (condition, what) => {
    if (!condition) {
      ok = false
      console.log(`  ✗ ${what}`)
    }
  }
  try {
    console.log(`redis-server on ${redis.url} (L2 and invalidation bus)`)
    const start = (name, map) => {
      const child = fork(fileURLToPath(import.meta.url), ['worker', name, map, redis.url], { stdio: 'inherit' })
      workers.push(child)
      let next = 0
      const waiting = new Map()
      child.on('message', (message) => {
        waiting.get(message.id)?.(message)
        waiting.delete(message.id)
      })
      const call = (op, payload = {}) =>
        new Promise((resolve, reject) => {
          const id = next++
          waiting.set(id, (message) => (message.error ? reject(new Error(`${name}: ${message.error}`)) : resolve(message)))
          child.send({ id, op, ...payload })
        })
      return call('ready').then(() => ({ name, call }))
    }
    const [a1, a2, b1, b2] = await Promise.all([start('a1', maps.a), start('a2', maps.a), start('b1', maps.b), start('b2', maps.b)])
    console.log('host A = processes a1, a2 (map two-hosts-a); host B = processes b1, b2 (map two-hosts-b)\n')
    const gets = async () => (await commandCalls(redis.port)).get ?? 0

    console.log('1. a1 sets price:42 = 10 (its L1 and Redis)')
    await a1.call('set', { key: 'price:42', value: 10 })
    let before = await gets()
    let read = await b1.call('get', { key: 'price:42' })
    console.log(`   b1 reads ${read.value} from ${read.from}  (Redis GETs: ${before} → ${await gets()})`)
    check(read.value === 10 && read.from === 'Redis (back-filled into host B’s L1)', 'b1 should read 10 from Redis')
    before = await gets()
    read = await b2.call('get', { key: 'price:42' })
    const after = await gets()
    console.log(`   b2 reads ${read.value} from ${read.from}  (Redis GETs: ${before} → ${after}: no round trip)`)
    check(read.value === 10 && read.from === 'its host’s L1' && after === before, 'b2 should read 10 from the L1')

    console.log('\n2. a1 sets price:42 = 12; b1 and b2 read through cacheable every millisecond until they see it')
    await Promise.all([b1.call('poll', { key: 'price:42', value: 12 }), b2.call('poll', { key: 'price:42', value: 12 })])
    const { at } = await a1.call('set', { key: 'price:42', value: 12 })
    for (const b of [b1, b2]) {
      const seen = await b.call('pollResult')
      const ms = seen.at - at
      console.log(`   ${b.name} reads 12 ${ms.toFixed(2)} ms after a1's set resolved (${seen.reads} reads)`)
      check(seen.seen && ms < 100, `${b.name} should read 12 within 100 ms`)
    }
    read = await b2.call('get', { key: 'price:42' })
    console.log(`   b2 reads ${read.value} from ${read.from} again`)

    console.log('\n3. a2 (host A’s other process) reads price:42')
    read = await a2.call('get', { key: 'price:42' })
    const state = await a2.call('state')
    console.log(`   ${read.value} from ${read.from}; a2 received ${state.received} messages, ignored ${state.ignored} from its own host's map`)
    check(read.value === 12 && read.from === 'its host’s L1', 'a2 should read 12 from the L1')

    for (const w of [a1, a2, b1, b2]) await w.call('exit')
  } finally {
    for (const child of workers) if (child.exitCode === null) child.kill()
    await redis.stop()
    for (const name of Object.values(maps)) SharedMap.unlink(name)
  }
  console.log(ok ? '\nok' : '\nFAILED')
  process.exit(ok ? 0 : 1)
}

async function worker(name, map, url) {
  const { Cacheable } = await import('cacheable')
  const { default: KeyvRedis } = await import('@keyv/redis')
  const { default: Keyv } = await import('keyv')
  const { KeyvSharedMap } = await import('lrukit/keyv')

  const l1 = new KeyvSharedMap(map, { memorySize: 16 * 2 ** 20, invalidation: { url } })
  const primary = new Keyv({ store: l1 })
  primary.on('error', (error) => console.error(`${name}: ${error.code ?? ''} ${error.message}`))
  const cache = new Cacheable({ primary, secondary: new KeyvRedis(url), ttl: '10m' })
  cache.on('error', (error) => console.error(`${name}: ${error.message}`))
  let lastFrom
  const host = `host ${name[0].toUpperCase()}`
  cache.on('cache:hit', ({ store }) => (lastFrom = store === 'primary' ? 'its host’s L1' : `Redis (back-filled into ${host}’s L1)`))
  const now = () => performance.timeOrigin + performance.now()
  let polling
  const ops = {
    ready: async () => ({ ready: await l1.ready() }),
    set: async ({ key, value }) => ({ result: await cache.set(key, value), at: now() }),
    get: async ({ key }) => {
      lastFrom = 'nowhere'
      return { value: await cache.get(key), from: lastFrom }
    },
    poll: async ({ key, value }) => {
      polling = (async () => {
        const deadline = Date.now() + 5000
        for (let reads = 1; ; reads++) {
          if ((await cache.get(key)) === value) return { seen: true, at: now(), reads }
          if (Date.now() > deadline) return { seen: false, reads }
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
      })()
      return {}
    },
    pollResult: async () => polling,
    state: async () => l1.invalidation.stats,
    exit: async () => {
      await cache.disconnect()
      setImmediate(() => process.exit(0))
      return {}
    },
  }
  process.on('message', async ({ id, op, ...payload }) => {
    try {
      process.send({ id, ...(await ops[op](payload)) })
    } catch (error) {
      process.send({ id, error: String(error?.stack ?? error) })
    }
  })
}
