// The README's error table is the contract for every error code lrukit throws. This spec checks it
// against the sources (every code the Rust crates and the binding can throw has a row, and every
// row is a code something throws) and against real calls (each row's constructor and classes).
// The API fuzz (api-fuzz.spec.mjs) checks every error it provokes against the same table.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { FlowTable, LruCache, SharedMap } from 'lrukit'

import { errorTable } from './fixtures/error-table.mjs'
import { test } from './test.framework.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

function* rustFiles(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) yield* rustFiles(p)
    else if (name.endsWith('.rs')) yield p
  }
}

/** Every code literal in the shipped sources: the Rust crates (crates/<crate>/src), lrukit/keyv and the CLI (bin/). */
function codesInSources() {
  const found = new Map()
  for (const crate of readdirSync(join(root, 'crates'))) {
    const src = join(root, 'crates', crate, 'src')
    try {
      statSync(src)
    } catch {
      continue
    }
    for (const file of rustFiles(src)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/"(E[A-Z]{2,}|ERR_LRUKIT_[A-Z_]+)"/g)) {
        if (!found.has(m[1])) found.set(m[1], file.slice(root.length))
      }
    }
  }
  // the JavaScript layers (lrukit/keyv, and the lrukit command-line tool in bin/)
  for (const dir of ['keyv', 'bin']) {
    for (const name of readdirSync(join(root, dir)).filter((n) => /\.m?js$/.test(n))) {
      for (const m of readFileSync(join(root, dir, name), 'utf8').matchAll(/'(ERR_LRUKIT_[A-Z_]+)'/g)) {
        if (!found.has(m[1])) found.set(m[1], `${dir}/${name}`)
      }
    }
  }
  return found
}

test('the README error table lists every code in the sources, and only those', (t) => {
  const table = errorTable()
  const sources = codesInSources()
  t.true(sources.size > 20, `found ${sources.size} codes in the sources`)
  const missing = [...sources].filter(([code]) => !table.has(code)).map(([code, file]) => `${code} (${file})`)
  t.deepEqual(missing, [], 'codes thrown by the sources but not in the README error table')
  const stale = [...table.keys()].filter((code) => !sources.has(code))
  t.deepEqual(stale, [], 'README error rows that no source throws')
})

test("the binding's table of crate codes throws each as the README says", (t) => {
  const table = errorTable()
  const src = readFileSync(join(root, 'crates/lrukit-napi/src/errors.rs'), 'utf8')
  const consts = Object.fromEntries([...src.matchAll(/pub const (\w+): &str = "(\w+)";/g)].map((m) => [m[1], m[2]]))
  const body = src.slice(src.indexOf('pub const CRATE_CODES'), src.indexOf('];', src.indexOf('pub const CRATE_CODES')))
  const rows = [...body.matchAll(/\((?:"(\w+)"|(\w+)), Kind::(\w+)\)/g)].map((m) => [m[1] ?? consts[m[2]], m[3]])
  t.true(rows.length > 10, `read ${rows.length} rows of CRATE_CODES`)
  const ctor = { Type: 'TypeError', Range: 'RangeError', State: 'Error' }
  for (const [code, kind] of rows) {
    t.truthy(table.get(code), `${code} has a README row`)
    t.deepEqual([...(table.get(code)?.as ?? [])], [ctor[kind]], `${code} is thrown as ${ctor[kind]}`)
  }
  const eCodes = [...table.keys()].filter((c) => !c.startsWith('ERR_'))
  t.deepEqual(eCodes.filter((c) => !rows.some(([r]) => r === c)), [], 'every E* code of the README is in CRATE_CODES')
})

/** The error `fn` throws (fails the test when it does not throw). */
function caught(t, fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  t.fail('expected a throw')
  return null
}

test('errors are thrown as the README table says, by the classes it marks', (t) => {
  const table = errorTable()
  const name = `errs${process.pid.toString(36)}`
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { capacity: 4, maxKeyBytes: 8, maxValueBytes: 8, eviction: 'none' })
  const cache = new LruCache({ capacity: 2 })
  const flows = new FlowTable({ timeout: 1000, capacity: 1, whenFull: 'refuse' })
  try {
    map.set('n', 'str')
    map.set('a', 1)
    map.set('b', 2)
    map.set('c', 3)
    flows.set('x', 1)
    // an array whose element is an accessor that calls the cache the batch call is running on
    const reentrant = ['k']
    Object.defineProperty(reentrant, 0, { get: () => (cache.get('k'), 'k') })
    const cases = [
      ['LruCache', () => new LruCache({ capacity: -1 }), 'ERR_LRUKIT_INVALID_CAPACITY'],
      ['LruCache', () => cache.set('k', 1, { ttl: -1 }), 'ERR_LRUKIT_INVALID_TTL'],
      ['LruCache', () => cache.set('k', 1, { timestamp: Infinity }), 'ERR_LRUKIT_INVALID_TIMESTAMP'],
      ['LruCache', () => cache.get({}), 'ERR_LRUKIT_INVALID_KEY'],
      ['LruCache', () => cache.getMany('nope'), 'ERR_LRUKIT_INVALID_ARGUMENT'],
      ['LruCache', () => new LruCache(), 'ERR_LRUKIT_INVALID_ARGUMENT'],
      ['SharedMap', () => SharedMap.create(name, { capacity: 4 }), 'EEXIST'],
      ['SharedMap', () => SharedMap.open(`${name}x`), 'ENOENT'],
      ['SharedMap', () => SharedMap.create('bad name!', { capacity: 4 }), 'ENAME'],
      ['SharedMap', () => map.set('toolongkey', 1), 'EKEYTOOLONG'],
      ['SharedMap', () => map.set('k', 'a value over eight bytes'), 'EVALUETOOLONG'],
      ['SharedMap', () => map.set('d', 4), 'EFULL'],
      ['SharedMap', () => map.incr('n', 1), 'ETYPE'],
      ['SharedMap', () => map.set('a', 2n ** 64n), 'ERANGE'],
      ['SharedMap', () => map.get({}), 'ERR_LRUKIT_INVALID_KEY'],
      ['SharedMap', () => map.set('a', Symbol('s')), 'ERR_LRUKIT_INVALID_VALUE'],
      ['SharedMap', () => SharedMap.create(`${name}t`, { capacity: 4, ttl: -1 }), 'ERR_LRUKIT_INVALID_TTL'],
      ['SharedMap', () => SharedMap.create(`${name}l`, { capacity: 4, lockTimeout: -1 }), 'ERR_LRUKIT_INVALID_TIMEOUT'],
      ['SharedMap', () => SharedMap.create(`${name}c`, {}), 'ERR_LRUKIT_INVALID_CAPACITY'],
      ['FlowTable', () => new FlowTable({ timeout: -1 }), 'ERR_LRUKIT_INVALID_TIMEOUT'],
      ['FlowTable', () => new FlowTable({ timeout: 1, engine: 'nope' }), 'ERR_LRUKIT_INVALID_ENGINE'],
      ['FlowTable', () => flows.set('y', 1), 'ERR_LRUKIT_FULL'],
      ['FlowTable', () => flows.set({}, 1), 'ERR_LRUKIT_INVALID_KEY'],
      ['FlowTable', () => flows.set('x', 2n ** 64n), 'ERANGE'],
      ['FlowTable', () => new FlowTable(), 'ERR_LRUKIT_INVALID_ARGUMENT'],
      ['LruCache', () => cache.getMany(reentrant), 'ERR_LRUKIT_REENTRANT'],
    ]
    for (const [cls, fn, code] of cases) {
      const e = caught(t, fn)
      const row = table.get(code)
      t.is(e?.code, code, `${cls}: ${fn}`)
      t.truthy(row, `${code} has a row`)
      if (!row || !e) continue
      t.true(row.as.has(e.constructor.name), `${code} from ${cls} thrown as ${e.constructor.name}; the table says ${[...row.as]}`)
      t.true(row.by.has(cls), `the table marks ${code} as thrown by ${cls}`)
    }
    map.close()
    const closed = caught(t, () => map.get('a'))
    t.is(closed?.code, 'ECLOSED')
    t.true(table.get('ECLOSED').as.has(closed?.constructor.name))
  } finally {
    if (!map.closed) map.close()
    flows.close()
    SharedMap.unlink(name)
  }
})
