import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

import { FlowTable } from 'lrukit'

import { test, runProcess } from './test.framework.mjs'

const require = createRequire(import.meta.url)

for (const engine of ['wheel', 'dashmap']) {
  test(`${engine}: set/get/has/touch/delete/size with typed off-heap values`, (t) => {
    const f = new FlowTable({ timeout: 1000, engine, clock: 'manual' })
    t.is(f.set('a', 1), f)
    f.set(2n, 'two').set(Buffer.from('k'), Buffer.from('v')).set(3, null).set('b', true)
    t.is(f.get('a'), 1)
    t.is(f.get(2n), 'two')
    t.deepEqual([...f.get(Buffer.from('k'))], [...Buffer.from('v')])
    t.is(f.get(3), null)
    t.true(f.has('b'))
    t.is(f.size, 5)
    t.true(f.touch('a'))
    t.false(f.touch('missing'))
    t.true(f.delete('a'))
    t.false(f.delete('a'))
    t.is(f.get('a'), undefined)
    t.throws(() => f.set({}, 1), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
    t.throws(() => f.set('o', { a: 1 }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
    t.throws(() => f.set('t', 1, { timeout: -5 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' })
    f.clear()
    t.is(f.size, 0)
  })

  test(`${engine}: idle entries are never returned, touch keeps them, expire reaps in bounded batches`, (t) => {
    const f = new FlowTable({ timeout: 100, engine, clock: 'manual' })
    for (let i = 0; i < 50; i++) f.set(`flow${i}`, i)
    f.set('long', 'x', { timeout: 10_000 })
    f.advanceTime(60)
    t.true(f.touch('flow0'))
    t.is(f.getAndTouch('flow1'), 1)
    f.advanceTime(60) // 120 ms: flows 2..49 are idle past 100 ms
    t.is(f.get('flow2'), undefined, 'an idle entry is never returned, even before expire')
    t.false(f.has('flow3'))
    t.is(f.get('flow0'), 0, 'touched 60 ms ago')
    t.is(f.get('long'), 'x')
    const first = f.expire({ max: 10 })
    t.is(first.length, 10, 'expire returns at most max entries')
    for (const e of first) {
      t.true(e.key.startsWith('flow') && typeof e.value === 'number')
      t.is(e.lastSeen, 0)
    }
    const rest = f.expire()
    t.is(first.length + rest.length, 48)
    t.is(f.size, 3)
    f.advanceTime(100)
    t.deepEqual(f.expire().map((e) => e.key).sort(), ['flow0', 'flow1'])
    t.is(f.expire({ now: f.now() + 100_000 }).length, 1)
    t.is(f.size, 0)
  })

  test(`${engine}: capacity with both policies`, (t) => {
    const evict = new FlowTable({ timeout: 1000, capacity: 3, engine, clock: 'manual' })
    for (const k of ['a', 'b', 'c']) {
      evict.set(k, k)
      evict.advanceTime(1)
    }
    evict.set('d', 'd')
    t.is(evict.size, 3, 'a full table evicts instead of growing')
    t.is(evict.get('d'), 'd')
    // eviction picks a long-idle entry cheaply (per shard), not necessarily the global oldest
    t.is(['a', 'b', 'c'].filter((k) => evict.get(k) === undefined).length, 1)
    const refuse = new FlowTable({ timeout: 1000, capacity: 2, whenFull: 'refuse', engine })
    refuse.set('a', 1).set('b', 2)
    t.throws(() => refuse.set('c', 3), { code: 'ERR_LRUKIT_FULL' })
    t.is(refuse.get('a'), 1)
  })
}

test('touchMany: one result per key, same semantics as touch, both engines', (t) => {
  for (const engine of ['wheel', 'dashmap']) {
    const f = new FlowTable({ timeout: 100, engine, clock: 'manual' })
    for (let i = 0; i < 300; i++) f.set(`k${i}`, i)
    f.set(7n, 'big').set(Buffer.from('b'), 1)
    f.advanceTime(60)
    const keys = ['k0', 'nope', 7n, Buffer.from('b'), 'k0', ...Array.from({ length: 150 }, (_, i) => `k${i * 2}`)]
    const mask = f.touchMany(keys)
    t.true(mask instanceof Uint8Array)
    t.is(mask.length, keys.length)
    t.deepEqual(Array.from(mask.subarray(0, 5)), [1, 0, 1, 1, 1])
    t.true(mask.subarray(5).every((x) => x === 1))
    f.advanceTime(60) // 120: untouched flows (odd k) are idle past 100 ms, touched ones are not
    t.is(f.get('k1'), undefined)
    t.is(f.get('k2'), 2)
    t.is(f.get(7n), 'big')
    t.deepEqual([...f.touchMany(['k1', 'k3', 'k4'])], [0, 0, 1])
    t.is(f.touchMany([]).length, 0)
    t.throws(() => f.touchMany('k1'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
    t.throws(() => f.touchMany([{}]), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
  }
})

test('setMany: pairs in order, one timeout, all-or-nothing on bad input, prefix on a full table', (t) => {
  for (const engine of ['wheel', 'dashmap']) {
    const f = new FlowTable({ timeout: 100, engine, clock: 'manual' })
    const pairs = Array.from({ length: 400 }, (_, i) => [`k${i % 300}`, i])
    t.is(f.setMany(pairs), f)
    t.is(f.size, 300)
    t.is(f.get('k0'), 300, 'the later pair wins')
    t.is(f.get('k299'), 299)
    f.setMany([[1n, Buffer.from('x')], [2, null], ['s', 'str']], { timeout: 10 })
    t.is(f.get(2), null)
    f.advanceTime(10)
    t.is(f.get(2), undefined, "the batch's timeout applies")
    t.is(f.get('k1'), 301)
    const before = f.size
    t.throws(() => f.setMany([['ok', 1], ['bad', { a: 1 }]]), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE' })
    t.throws(() => f.setMany([['ok', 1], [{}, 1]]), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_KEY' })
    t.throws(() => f.setMany([['ok', 1], 'no']), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
    t.throws(() => f.setMany('no'), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
    t.throws(() => f.setMany([], { timeout: -1 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' })
    t.is(f.size, before, 'bad input stores nothing')
    t.false(f.has('ok'))
    const small = new FlowTable({ timeout: 100, engine, capacity: 2, whenFull: 'refuse', clock: 'manual' })
    t.throws(() => small.setMany([['a', 1], ['b', 2], ['c', 3]]), { code: 'ERR_LRUKIT_FULL' })
    t.deepEqual([small.get('a'), small.get('b'), small.has('c')], [1, 2, false])
  }
})

test('purge({ max }) removes expired entries without returning them', (t) => {
  for (const engine of ['wheel', 'dashmap']) {
    const f = new FlowTable({ timeout: 10, engine, clock: 'manual' })
    for (let i = 0; i < 25; i++) f.set(i, i)
    f.set('stays', 1, { timeout: 1000 })
    t.is(f.purge(), 0, 'nothing due yet')
    f.advanceTime(10)
    t.is(f.purge({ max: 10 }), 10)
    t.is(f.size, 16)
    t.is(f.purge(), 15)
    t.is(f.size, 1)
    t.is(f.get('stays'), 1)
    t.throws(() => f.purge({ max: -1 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  }
})

test('json: true stores objects and arrays (as JSON), single and batched; without it they are refused', (t) => {
  for (const engine of ['wheel', 'dashmap']) {
    const f = new FlowTable({ timeout: 1000, engine, json: true, clock: 'manual' })
    f.set('o', { a: [1, 'x', null] })
    f.setMany([['arr', [1, 2]], ['n', 3]])
    t.deepEqual(f.get('o'), { a: [1, 'x', null] })
    t.deepEqual(f.get('arr'), [1, 2])
    t.is(f.get('n'), 3)
    f.advanceTime(1000)
    t.deepEqual(f.expire().map((e) => e.key).sort(), ['arr', 'n', 'o'])
    const plain = new FlowTable({ timeout: 1000, engine })
    t.throws(() => plain.set('o', {}), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_VALUE', message: /json: true/ })
  }
})

test('bad options are clear errors', (t) => {
  t.throws(() => new FlowTable({ timeout: -1 }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' })
  t.throws(() => new FlowTable({ timeout: 10, engine: 'btree' }), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ENGINE' })
  t.throws(() => new FlowTable({ timeout: 10 }).advanceTime(5), { instanceOf: TypeError })
})

test('missing, null or non-object options and wrong option types are TypeErrors with a code', (t) => {
  const arg = { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' }
  for (const bad of [undefined, null, 5, 'timeout', true, 1n, Symbol('o'), () => {}]) {
    t.throws(() => new FlowTable(bad), arg)
    t.throws(() => FlowTable.shared('fuzzless', bad), arg)
  }
  t.throws(() => new FlowTable(), arg)
  t.false(FlowTable.unshare('fuzzless'), 'a refused FlowTable.shared made no table')
  t.throws(() => new FlowTable({}), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' })
  t.throws(() => new FlowTable({ timeout: '5' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_TIMEOUT' })
  t.throws(() => new FlowTable({ timeout: 5, capacity: '5' }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_CAPACITY' })
  t.throws(() => new FlowTable({ timeout: 5, engine: 1 }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ENGINE' })
  for (const field of ['whenFull', 'clock', 'json', 'keepAlive', 'expireInterval', 'expireBatch']) {
    t.throws(() => new FlowTable({ timeout: 5, onExpire() {}, [field]: {} }), arg, field)
  }
  t.throws(() => FlowTable.shared(1, { timeout: 5 }), arg)
  t.throws(() => FlowTable.unshare(), arg)
  const f = new FlowTable({ timeout: 5, clock: 'manual' })
  t.throws(() => f.expire(5), arg)
  t.throws(() => f.purge('max'), arg)
  t.throws(() => f.expire({ now: '1' }), arg)
  t.throws(() => f.purge({ max: '1' }), arg)
  t.deepEqual(f.expire(null), [])
  t.throws(() => f.advanceTime('5'), arg)
  t.throws(() => f.advanceTime(), arg)
  t.throws(() => f.advanceTime(2 ** 54), { instanceOf: RangeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.is(f.advanceTime(5), 5)
  t.throws(() => FlowTable({ timeout: 5 }), arg)
  t.is(globalThis.touchMany, undefined, 'FlowTable() without new binds no methods to the global object')
  const trap = new Error('from a getter')
  t.is(
    t.throws(() => new FlowTable({ get timeout() { throw trap } })),
    trap,
    'what a getter throws propagates unchanged',
  )
})

test('4 worker_threads hammering one shared table: exact accounting, no deadlock', async (t) => {
  const name = `shared-${process.pid}-${Math.random()}`
  const table = FlowTable.shared(name, { timeout: 60_000 })
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { FlowTable } = require(${JSON.stringify(require.resolve('lrukit'))})
    const t = FlowTable.shared(workerData.name, { timeout: 1 })
    let deleted = 0
    for (let i = 0; i < 5000; i++) {
      t.set('w' + workerData.id + ':' + i, i)
      t.touch('w' + workerData.id + ':' + (i >> 1))
      if (i % 5 === 0 && t.delete('w' + workerData.id + ':' + (i - 1))) deleted++
      t.get('w' + ((workerData.id + 1) % 4) + ':' + i)
    }
    parentPort.postMessage(deleted)
  `
  const deletedCounts = await Promise.all(
    [0, 1, 2, 3].map(
      (id) =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { name, id } })
          w.once('message', (m) => w.terminate().then(() => resolve(m)))
          w.once('error', reject)
        }),
    ),
  )
  const deleted = deletedCounts.reduce((a, b) => a + b, 0)
  t.is(table.size, 4 * 5000 - deleted)
  for (let id = 0; id < 4; id++) t.is(table.get(`w${id}:4999`), 4999)
  t.true(FlowTable.unshare(name))
})

test('onExpire: one native timer delivers every expired entry once, in batches of at most expireBatch', async (t) => {
  for (const engine of ['wheel', 'dashmap']) {
    const got = []
    let calls = 0
    let done
    const all = new Promise((resolve) => (done = resolve))
    const f = new FlowTable({
      timeout: 100,
      engine,
      clock: 'manual',
      expireInterval: 5,
      expireBatch: 40,
      onExpire(entries) {
        calls++
        t.true(entries.length >= 1 && entries.length <= 40, `batch of ${entries.length}`)
        got.push(...entries)
        if (got.length === 100) done()
      },
    })
    for (let i = 0; i < 100; i++) f.set(`k${i}`, i)
    f.set('kept', 'alive', { timeout: 1_000_000 })
    f.advanceTime(50)
    f.touch('k0')
    f.advanceTime(60) // 110: k1..k99 idle for 110 ms, k0 touched at 50
    const deadline = setTimeout(() => done(), 10_000)
    // Wait (no fixed delay: CI machines stall) until k1..k99 arrived, then check k0 is not among them.
    for (const t0 = Date.now(); got.length < 99 && Date.now() - t0 < 10_000; ) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.is(got.length, 99, `${engine}: k1..k99 and nothing else`)
    t.false(got.some((e) => e.key === 'k0'), 'k0 was touched: not due yet')
    f.advanceTime(100) // k0 too
    await all
    clearTimeout(deadline)
    t.is(f.size, 1)
    t.is(f.get('kept'), 'alive')
    f.close()
    t.is(got.length, 100)
    t.true(calls >= 3, `${engine}: 100 entries in batches of 40 need 3+ calls, got ${calls}`)
    t.deepEqual(
      got.map((e) => e.key).sort(),
      Array.from({ length: 100 }, (_, i) => `k${i}`).sort(),
    )
    t.true(got.every((e) => e.value === Number(e.key.slice(1))))
    t.is(got.find((e) => e.key === 'k0').lastSeen, 50)
    t.true(f.closed)
    t.throws(() => f.get('kept'), { code: 'ECLOSED' })
    t.throws(() => f.size, { code: 'ECLOSED' })
    f.close() // idempotent
  }
})

test('close(): no more notifications, the handle throws ECLOSED, other handles keep the entries; bad options are clear errors', async (t) => {
  let calls = 0
  const tableName = `closing${process.pid}`
  const f = FlowTable.shared(tableName, { timeout: 10, clock: 'manual', expireInterval: 5, onExpire: () => calls++ })
  const other = FlowTable.shared(tableName, { timeout: 10 })
  f.set('a', 1)
  t.false(f.closed)
  f.close()
  t.true(f.closed)
  for (const call of [() => f.set('b', 2), () => f.get('a'), () => f.size, () => f.expire(), () => f.now(), () => f.clear()]) {
    t.throws(call, { instanceOf: Error, code: 'ECLOSED' })
  }
  other.advanceTime(100)
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.is(calls, 0, 'the closed handle delivers nothing')
  t.is(other.expire().length, 1) // still there for the other handle's expire(): nothing was lost
  other.close()
  FlowTable.unshare(tableName)
  t.throws(() => new FlowTable({ timeout: 10, onExpire: 5 }), { instanceOf: TypeError, code: 'ERR_LRUKIT_INVALID_ARGUMENT' })
  t.throws(() => new FlowTable({ timeout: 10, onExpire() {}, expireInterval: 0 }), {
    instanceOf: RangeError,
    code: 'ERR_LRUKIT_INVALID_ARGUMENT',
  })
  t.throws(() => new FlowTable({ timeout: 10, onExpire() {}, expireBatch: -1 }), {
    instanceOf: RangeError,
    code: 'ERR_LRUKIT_INVALID_ARGUMENT',
  })
  const name = `bad-expiry-${process.pid}`
  t.throws(() => FlowTable.shared(name, { timeout: 10, onExpire: 'no' }), { instanceOf: TypeError })
  t.false(FlowTable.unshare(name), 'a rejected shared() call registers nothing')
})

for (const [mode, engine] of [
  ['close', 'wheel'],
  ['unref', 'dashmap'],
  ['worker', 'wheel'],
]) {
  test(`onExpire in a child process (${mode}, ${engine}): notifications arrive and the process exits by itself`, async (t) => {
    const child = fileURLToPath(new URL('./fixtures/flow-expire-child.mjs', import.meta.url))
    const started = Date.now()
    const { code, out } = await runProcess(process.execPath, [child, mode, engine])
    t.is(code, 0, `exit code (output: ${out})`)
    t.true(Date.now() - started < 15_000, 'exited without being killed')
    const lines = out.trim().split('\n').map((l) => JSON.parse(l))
    const expected = [
      [2, 'two', 'number'],
      ['3n', 'buffer:78', 'number'],
      ['a', 1, 'number'],
    ]
    t.deepEqual(lines[0].seen, expected.map((e) => JSON.stringify(e)).sort())
    t.is(lines[0].size, 0)
    if (mode === 'worker') t.deepEqual(lines[1], { workerExit: 0 })
  })
}

test('onExpire with keepAlive and no close(): the timer keeps the process alive', async (t) => {
  const child = fileURLToPath(new URL('./fixtures/flow-expire-child.mjs', import.meta.url))
  const p = spawn(process.execPath, [child, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve(signal ?? code)))
  const first = await new Promise((resolve) => p.stdout.once('data', (d) => resolve(String(d))))
  t.is(JSON.parse(first).seen.length, 3)
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.is(p.exitCode, null, 'still running 600 ms after its last notification')
  p.kill('SIGKILL')
  t.not(await exited, 0, 'it ended only because it was killed')
})

test('examples/conntrack-workers.mjs: workers share one tracker, onExpire sees every packet, the process exits', async (t) => {
  const example = fileURLToPath(new URL('../examples/conntrack-workers.mjs', import.meta.url))
  const { code, out } = await runProcess(process.execPath, [example, '4', '200'], { timeout: 30_000 })
  t.is(code, 0, out)
  const summary = JSON.parse(out.trim().split('\n').pop())
  t.true(summary.allPacketsSeen, out)
  t.true(summary.closed >= 800, `every one of the 800 flows closed at least once: ${summary.closed}`)
  t.is(out.match(/^worker \d: /gm).length, 4)
})

test('terminating worker_threads whose tables have live onExpire timers never crashes the process', async (t) => {
  const name = `term-${process.pid}`
  const code = `
    const { FlowTable } = require(${JSON.stringify(require.resolve('lrukit'))})
    const { parentPort, workerData } = require('node:worker_threads')
    let n = 0
    const shared = FlowTable.shared(workerData, { timeout: 1, expireInterval: 1, keepAlive: true, onExpire: (e) => (n += e.length) })
    const own = new FlowTable({ timeout: 1, expireInterval: 1, onExpire: (e) => (n += e.length) })
    let i = 0
    setInterval(() => {
      for (let k = 0; k < 500; k++) {
        shared.set('k' + i++, i)
        own.set(i, 'v')
      }
    }, 1)
    parentPort.postMessage('ready')
  `
  for (let round = 0; round < 10; round++) {
    const workers = [0, 1].map(() => new Worker(code, { eval: true, workerData: name }))
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))))
    await new Promise((resolve) => setTimeout(resolve, 5 + round * 3))
    const codes = await Promise.all(workers.map((w) => w.terminate()))
    t.deepEqual(codes, [1, 1])
  }
  // The shared table outlived its workers and still works here.
  const table = FlowTable.shared(name, { timeout: 1 })
  table.set('after', 1, { timeout: 60_000 })
  t.is(table.get('after'), 1)
  t.true(FlowTable.unshare(name))
})

test('expire() builds the same objects with and without its compiled helper (LRUKIT_TEST_NO_SCRIPT)', async (t) => {
  const script = `
    const { FlowTable } = require(${JSON.stringify(require.resolve('lrukit'))})
    const f = new FlowTable({ timeout: 10, clock: 'manual' })
    for (let i = 0; i < 5000; i++) f.set('k' + i, i % 3 ? i : 'v' + i)
    f.set(7n, Buffer.from('seven')).set(8, null).set(Buffer.from('b'), true)
    f.advanceTime(4)
    f.touch('k1')
    f.advanceTime(7)
    const out = f.expire()
    const show = (v) => (typeof v === 'bigint' ? v + 'n' : Buffer.isBuffer(v) ? 'buf:' + v.toString('hex') : v)
    const rows = out.map((e) => JSON.stringify([show(e.key), show(e.value), e.lastSeen, Object.keys(e)]))
    console.log(JSON.stringify(rows.sort()))
  `
  const run = async (env) => {
    const { code, out } = await runProcess(process.execPath, ['-e', script], { env })
    if (code !== 0) throw new Error(`exit ${code}: ${out}`)
    return JSON.parse(out)
  }
  const [fast, plain] = await Promise.all([run({}), run({ LRUKIT_TEST_NO_SCRIPT: '1' })])
  t.is(fast.length, 5002, 'all but the touched k1')
  t.deepEqual(fast, plain)
  t.true(fast.includes(JSON.stringify(['7n', 'buf:736576656e', 0, ['key', 'value', 'lastSeen']])))
  t.false(fast.some((r) => r.startsWith('["k1",')))
})

test('an exception thrown by onExpire surfaces as an uncaught exception, like a timer callback', async (t) => {
  const script = `
    const { FlowTable } = require(${JSON.stringify(require.resolve('lrukit'))})
    const f = new FlowTable({ timeout: 5, clock: 'manual', expireInterval: 5, keepAlive: true, onExpire() { throw new Error('boom from onExpire') } })
    process.on('uncaughtException', (e) => { console.log(JSON.stringify({ message: e.message, size: f.size })); f.close() })
    f.set('a', 1)
    f.advanceTime(10)
  `
  const { code, out } = await runProcess(process.execPath, ['-e', script])
  t.is(code, 0, out)
  t.deepEqual(JSON.parse(out.trim()), { message: 'boom from onExpire', size: 0 })
})

test('FlowTable.shared: onExpire handles in several workers share the reaping, every entry delivered exactly once', async (t) => {
  const name = `share-${process.pid}`
  const table = FlowTable.shared(name, { timeout: 50, clock: 'manual' })
  const code = `
    const { FlowTable } = require(${JSON.stringify(require.resolve('lrukit'))})
    const { parentPort, workerData } = require('node:worker_threads')
    const t = FlowTable.shared(workerData, {
      timeout: 1, expireInterval: 2, expireBatch: 7, keepAlive: true,
      onExpire: (entries) => parentPort.postMessage(entries.map((e) => e.key)),
    })
    parentPort.once('message', () => { t.close(); parentPort.close() })
    parentPort.postMessage('ready')
  `
  const N = 3000
  const received = [[], [], []]
  let total = 0
  let allIn
  const done = new Promise((resolve) => (allIn = resolve))
  const workers = received.map((mine) => {
    const w = new Worker(code, { eval: true, workerData: name })
    w.on('message', (m) => {
      if (m === 'ready') return
      mine.push(...m)
      total += m.length
      if (total >= N) allIn()
    })
    return w
  })
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))))
  for (let i = 0; i < N; i++) table.set(`e${i}`, i)
  table.advanceTime(100) // every entry is due; the workers' timers reap them
  const timer = setTimeout(allIn, 20_000)
  await done
  clearTimeout(timer)
  await new Promise((resolve) => setTimeout(resolve, 50)) // anything delivered twice would show up now
  for (const w of workers) w.postMessage('stop')
  await Promise.all(workers.map((w) => w.terminate()))
  const all = received.flat()
  t.is(table.size, 0)
  t.is(all.length, N, `shares ${received.map((s) => s.length)}`)
  t.is(new Set(all).size, N, 'no entry delivered twice')
  t.true(FlowTable.unshare(name))
})
