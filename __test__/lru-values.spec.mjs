// LruCache keeps its values in a JavaScript array indexed by the slot of their entry
// (crates/lrukit-napi/src/lru_values.rs): a hit returns the stored value itself, nothing copied or
// allocated; a removed value can be collected; and the plain Node-API methods an instance keeps
// where the method helper cannot be compiled (LRUKIT_TEST_NO_SCRIPT) give the same results. With
// `offHeap: true`, primitives are copied into native memory instead and add nothing to the heap.
import { createRequire } from 'node:module'

import { LruCache } from 'lrukit'

import { test, testUnless, runProcess, fullGc, noFullGc, isBun } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const lrukit = JSON.stringify(require.resolve('lrukit'))

test('get, peek and getMany return the stored values themselves, of every type', (t) => {
  const c = new LruCache({ capacity: 8 })
  const obj = { a: 1 }
  const fn = () => 1
  const sym = Symbol('s')
  const buf = Buffer.from('x')
  const big = 2n ** 70n
  const values = [obj, fn, sym, buf, big, 'a string', 1.5, -0]
  values.forEach((v, i) => c.set(i, v))
  values.forEach((v, i) => {
    t.true(Object.is(c.get(i), v), `get ${i}`)
    t.true(Object.is(c.peek(i), v), `peek ${i}`)
  })
  const many = c.getMany([0, 1, 99, 7])
  t.is(many.length, 4)
  t.is(many[0], obj)
  t.is(many[1], fn)
  t.true(2 in many, 'a miss is an undefined element, not a hole')
  t.is(many[2], undefined)
  t.true(Object.is(many[3], -0))
  t.is([...c.values()].length, 8)
  t.is(c.dump().find(([k]) => k === 0)[1].value, obj)
})

// Which values stay reachable: a deleted, expired, popped or cleared value at once; one evicted or
// replaced by `set` once the next insert takes its slot.
testUnless(noFullGc, 'removed values can be collected', async (t) => {
  const c = new LruCache({ capacity: 2, clock: 'manual' })
  const refs = {}
  const put = (k, options) => {
    const o = { k }
    refs[k] = new WeakRef(o)
    c.set(k, o, options)
  }
  put('deleted')
  put('popped')
  c.delete('deleted')
  c.popLru()
  put('expired', { ttl: 5 })
  put('cleared')
  c.advanceTime(10)
  t.is(c.get('expired'), undefined)
  c.clear()
  put('evicted')
  put('replaced')
  put('replaced') // replaces it: the first object's slot is given back
  put('third') // evicts 'evicted'
  put('fourth') // takes a slot given back above, overwriting that value
  put('fifth')
  // WeakRefs keep their target until the end of the current job.
  await new Promise((resolve) => setTimeout(resolve, 0))
  fullGc()
  for (const k of ['deleted', 'popped', 'expired', 'cleared', 'evicted']) t.is(refs[k].deref(), undefined, k)
  t.is(c.get('fifth').k, 'fifth')
  t.is(c.get('fourth').k, 'fourth')
})

testUnless(
  isBun ? 'Bun reports no garbage-collection entries to PerformanceObserver' : undefined,
  'a hit allocates nothing: a million hits of a string value run no scavenge',
  async (t) => {
    const { PerformanceObserver } = await import('node:perf_hooks')
    const c = new LruCache({ capacity: 16 })
    c.set('k', `a value of thirty-some bytes ${Math.random()}`)
    // A cache that only ever held numbers: they stay boxed too, not re-boxed on each read.
    const numbers = new LruCache({ capacity: 16 })
    numbers.set('n', 1.5)
    // The values escape into `sink`, so an allocation on the way could not be optimized away.
    const sink = []
    const hit = () => {
      let same = 0
      const v = c.get('k')
      for (let i = 0; i < 1_000_000; i++) {
        sink[i & 15] = c.get('k')
        sink[(i & 15) + 16] = numbers.get('n')
        if (sink[i & 15] === v && sink[(i & 15) + 16] === 1.5) same++
      }
      return same
    }
    hit() // compiled before counting
    let gcs = 0
    const observer = new PerformanceObserver((list) => (gcs += list.getEntries().length))
    observer.observe({ entryTypes: ['gc'] })
    fullGc()
    await new Promise((resolve) => setTimeout(resolve, 10))
    gcs = 0
    t.is(hit(), 1_000_000)
    await new Promise((resolve) => setTimeout(resolve, 10))
    observer.disconnect()
    // Copying the 48-byte string out on every hit allocated ~100 MB here: several scavenges.
    t.true(gcs <= 1, `${gcs} garbage collections during 2,000,000 hits`)
  },
)

/** One seeded run of every LruCache method; returns its log. */
const SCRIPT = `
  const { LruCache } = require(${lrukit})
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
  const c = new LruCache({ capacity: 50, clock: 'manual', offHeap: process.env.OFF_HEAP === '1' })
  const log = []
  const show = (v) => (v === undefined ? 'u' : typeof v === 'object' && v !== null ? JSON.stringify(v) : typeof v + ':' + String(v))
  for (let i = 0; i < 20000; i++) {
    const k = 'k' + Math.floor(rand() * 80)
    const r = rand()
    if (r < 0.3) log.push(show(c.get(k)))
    else if (r < 0.35) log.push(show(c.peek(k)))
    else if (r < 0.6) c.set(k, rand() < 0.5 ? { i } : 's' + i, rand() < 0.2 ? { ttl: 1 + Math.floor(rand() * 20) } : undefined)
    else if (r < 0.65) log.push(c.getMany([k, 'k1', 'k2']).map(show).join())
    else if (r < 0.7) c.setMany([[k, i], ['k3', 'x' + i]])
    else if (r < 0.75) log.push(String(c.delete(k)))
    else if (r < 0.77) { const e = c.popLru(); log.push(e === undefined ? 'u' : e.key + show(e.value)) }
    else if (r < 0.8) c.advanceTime(1 + Math.floor(rand() * 5))
    else if (r < 0.801) c.clear()
    else if (r < 0.81) log.push(String(c.purgeStale()))
    else if (r < 0.82) log.push(JSON.stringify([...c.entries()]))
    else log.push(String(c.has(k)) + c.size)
  }
  log.push(JSON.stringify(c.dump()))
  console.log(JSON.stringify({ fast: c.get.toString().includes('getSlot'), log }))
`

test('the compiled fast methods and the plain Node-API ones give the same results (LRUKIT_TEST_NO_SCRIPT)', async (t) => {
  const run = async (env) => {
    const { code, out } = await runProcess(process.execPath, ['-e', SCRIPT], { env, timeout: 60_000 })
    t.is(code, 0, out)
    return JSON.parse(out.trim().split('\n').pop())
  }
  const [fast, plain, offHeap] = await Promise.all([run({}), run({ LRUKIT_TEST_NO_SCRIPT: '1' }), run({ OFF_HEAP: '1' })])
  t.true(fast.fast, 'the default run uses the compiled methods')
  t.false(plain.fast, 'LRUKIT_TEST_NO_SCRIPT keeps the plain methods')
  t.false(offHeap.fast, 'offHeap makes its values natively, without the compiled methods')
  t.true(fast.log.length > 10_000)
  t.deepEqual(plain.log, fast.log)
  t.deepEqual(offHeap.log, fast.log, 'offHeap: the same results')
})

test('offHeap: primitives come back equal, objects the same, bad option values are TypeErrors', (t) => {
  const c = new LruCache({ capacity: 16, offHeap: true })
  const obj = { a: 1 }
  const values = ['a string', 'ü€😀', 1.5, -0, 2n ** 70n, true, null, undefined, obj]
  values.forEach((v, i) => c.set(i, v))
  values.forEach((v, i) => t.true(Object.is(c.get(i), v), `get ${i}`))
  t.is(c.popLru().value, 'a string')
  c.set(1, obj) // a primitive's slot now holds an object, and back
  t.is(c.get(1), obj)
  c.set(1, 'again')
  t.is(c.get(1), 'again')
  t.is(c.get('\uD800'), undefined)
  c.set('lone', 'a\uD800')
  t.is(c.get('lone'), 'a\uFFFD', 'a string value is kept as UTF-8: a lone surrogate comes back as U+FFFD')
  t.throws(() => new LruCache({ capacity: 8, offHeap: 'yes' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
})

testUnless(noFullGc, 'offHeap: 200,000 string values add nothing to the V8 heap; kept as they are, they stay on it', (t) => {
  const grow = (offHeap) => {
    fullGc()
    const before = process.memoryUsage().heapUsed
    const c = new LruCache({ capacity: 200_000, offHeap })
    for (let i = 0; i < 200_000; i++) c.set(i, `session:${i}:${'x'.repeat(24)}`)
    fullGc()
    const grown = process.memoryUsage().heapUsed - before
    t.is(c.get(7), `session:7:${'x'.repeat(24)}`)
    return grown
  }
  const kept = grow(false)
  const off = grow(true)
  t.true(kept > 8e6, `kept on the heap: ${kept} bytes`)
  t.true(off < 2e6, `offHeap: ${off} bytes`)
})
