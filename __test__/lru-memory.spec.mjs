// LruCache and memory: a capacity or an array length that the machine cannot back is a coded
// RangeError (ERR_LRUKIT_OUT_OF_MEMORY), never an abort of the process (issue 15). Each attempt
// runs in a child process, so that a regression (SIGABRT, an OOM kill) fails the test instead of
// taking the test runner down, and the child reports the error and that it is still alive.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'

import { LruCache } from 'lrukit'

import { test, testUnless, runProcess } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const lrukit = JSON.stringify(require.resolve('lrukit'))

/** Bytes of table per entry slot (README, "Memory"). */
const BYTES_PER_ENTRY = 72

/** Runs `body` (statements using `LruCache`) in a child; it prints one JSON line, parsed here. */
async function inChild(t, body, env) {
  const script = `
    const { LruCache } = require(${lrukit})
    const report = (o) => console.log(JSON.stringify(o))
    const caught = (f) => {
      const started = Date.now()
      try {
        f()
        return { threw: false }
      } catch (e) {
        return { threw: true, name: e.constructor.name, code: e.code, message: e.message, ms: Date.now() - started }
      }
    }
    ${body}
  `
  const { code, out } = await runProcess(process.execPath, ['-e', script], { env, timeout: 60_000 })
  t.is(code, 0, `the child exits normally (output: ${out})`)
  return JSON.parse(out.trim().split('\n').pop())
}

/**
 * Whether Linux's overcommit policy refuses one allocation of `bytes` outright (so the allocator,
 * not lrukit's physical-memory limit, says no): heuristic mode refuses more than RAM + swap,
 * strict mode more than the commit limit, "always" mode never. `undefined` off Linux.
 */
function linuxRefuses(bytes) {
  if (process.platform !== 'linux') return undefined
  const mode = readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim()
  const info = Object.fromEntries(
    readFileSync('/proc/meminfo', 'utf8')
      .split('\n')
      .map((l) => /^(\w+):\s+(\d+)/.exec(l))
      .filter(Boolean)
      .map(([, k, v]) => [k, Number(v) * 1024]),
  )
  if (mode === '0') return bytes > info.MemTotal + info.SwapTotal
  if (mode === '2') return bytes > info.CommitLimit
  return false
}

for (const capacity of [1e9, 4e8]) {
  const bytes = capacity * BYTES_PER_ENTRY

  // A machine that could hold the table would build it (writing 16 bytes per entry).
  const fits = bytes <= os.totalmem() * 1.01 ? `${bytes} bytes fit in this machine's ${os.totalmem()} bytes of memory` : undefined
  testUnless(fits, `new LruCache({ capacity: ${capacity} }) (${bytes / 1e9} GB) throws ERR_LRUKIT_OUT_OF_MEMORY in a child that survives`, async (t) => {
    const r = await inChild(
      t,
      `const e = caught(() => new LruCache({ capacity: ${capacity} }))
       const c = new LruCache({ capacity: 4 }).set('a', 1)
       report({ ...e, alive: c.get('a') === 1 })`,
    )
    t.true(r.threw, 'the constructor throws')
    t.is(r.name, 'RangeError')
    t.is(r.code, 'ERR_LRUKIT_OUT_OF_MEMORY')
    t.true(r.message.includes(`needs ${bytes} bytes (${BYTES_PER_ENTRY} per entry)`), r.message)
    t.true(r.message.includes('physical memory'), r.message)
    t.true(r.ms < 1000, `refused before allocating (${r.ms} ms)`)
    t.true(r.alive, 'the process and other caches keep working')
  })

  // Elsewhere the allocation may succeed (overcommit) and the table would really be built.
  const granted = linuxRefuses(bytes) !== true ? `the operating system may grant ${bytes} bytes here` : undefined
  testUnless(granted, `new LruCache({ capacity: ${capacity} }) without the physical-memory limit: the allocator's refusal is ERR_LRUKIT_OUT_OF_MEMORY, not SIGABRT`, async (t) => {
    const r = await inChild(
      t,
      `const e = caught(() => new LruCache({ capacity: ${capacity} }))
       const c = new LruCache({ capacity: 4 }).set('a', 1)
       report({ ...e, alive: c.get('a') === 1 })`,
      { LRUKIT_TEST_NO_MEMORY_LIMIT: '1' },
    )
    t.true(r.threw, 'the constructor throws')
    t.is(r.name, 'RangeError')
    t.is(r.code, 'ERR_LRUKIT_OUT_OF_MEMORY')
    t.true(r.message.includes(`could not allocate ${bytes} bytes`), r.message)
    t.true(r.alive, 'the process and other caches keep working')
  })
}

test('a capacity that fits is unaffected by the limit', (t) => {
  const c = new LruCache({ capacity: 1_000_000 })
  t.is(c.capacity, 1_000_000)
  c.set('a', 1)
  t.is(c.get('a'), 1)
})

test('getMany/setMany with arrays of length 2^32 - 1 throw coded errors at once, in a child that survives', async (t) => {
  const r = await inChild(
    t,
    `const c = new LruCache({ capacity: 10 }).set('a', 1)
     const u = new LruCache({ capacity: Infinity }).set('a', 1)
     const huge = () => new Array(2 ** 32 - 1)
     const withKeys = (n) => { const a = huge(); for (let i = 0; i < n; i++) a[i] = 'k' + i; return a }
     const started = Date.now()
     report({
       holes: caught(() => c.getMany(huge())),
       // more than one packing chunk (65,536 keys) of real keys before the first hole
       keysThenHoles: caught(() => c.getMany(withKeys(70_000))),
       unbounded: caught(() => u.getMany(huge())),
       setHoles: caught(() => c.setMany(huge())),
       setOneThenHoles: caught(() => { const a = huge(); a[0] = ['b', 2]; c.setMany(a) }),
       unboundedSet: caught(() => u.setMany(huge())),
       ms: Date.now() - started,
       after: [c.get('a'), c.get('b'), c.size, u.get('a'), u.size],
     })`,
  )
  for (const k of ['holes', 'keysThenHoles', 'unbounded']) {
    t.true(r[k].threw, k)
    t.is(r[k].name, 'TypeError', k)
    t.is(r[k].code, 'ERR_LRUKIT_INVALID_KEY', k)
  }
  for (const k of ['setHoles', 'setOneThenHoles', 'unboundedSet']) {
    t.true(r[k].threw, k)
    t.is(r[k].name, 'TypeError', k)
    t.is(r[k].code, 'ERR_LRUKIT_INVALID_ARGUMENT', k)
  }
  t.true(r.ms < 10_000, `no work or memory proportional to the length (${r.ms} ms)`)
  t.deepEqual(r.after, [1, 2, 2, 1, 1], 'pairs before the first bad one are stored, nothing is lost')
})

test('getMany with arrays of length 2^32 - 1 without the compiled key packer', async (t) => {
  const r = await inChild(
    t,
    `const c = new LruCache({ capacity: 10 }).set('a', 1)
     const a = new Array(2 ** 32 - 1); a[0] = 'a'
     report({ e: caught(() => c.getMany(a)), after: c.get('a') })`,
    { LRUKIT_TEST_NO_SCRIPT: '1' },
  )
  t.is(r.e.code, 'ERR_LRUKIT_INVALID_KEY')
  t.is(r.after, 1)
})

test('getMany over several packing chunks (mixed key types) equals the same gets one by one', (t) => {
  const n = 150_000 // > 2 chunks of 65,536
  const a = new LruCache({ capacity: n })
  const b = new LruCache({ capacity: n })
  const key = (i) => (i % 3 === 0 ? i : i % 3 === 1 ? `s${i}` : `ключ${i}`)
  for (let i = 0; i < n; i += 2) {
    a.set(key(i), i)
    b.set(key(i), i)
  }
  const keys = Array.from({ length: n }, (_, i) => key((i * 7919) % n))
  const batch = a.getMany(keys)
  const single = keys.map((k) => b.get(k))
  t.is(batch.length, n)
  t.true(isDeepEqualSparse(batch, single), 'same values in the same places')
  t.deepEqual([...a.keys()].slice(0, 1000), [...b.keys()].slice(0, 1000), 'same promotions')
})

/** `batch` leaves misses as holes; compare element by element. */
function isDeepEqualSparse(batch, single) {
  for (let i = 0; i < single.length; i++) if (batch[i] !== single[i]) return false
  return true
}
