// Keys mean the same thing in all three classes: the same values are one key or distinct keys, are
// found again by single and batch calls alike, and come back with their type.
import { FlowTable, LruCache, SharedMap } from 'lrukit'

import { isBun, test } from './test.framework.mjs'

const tag = `${process.pid.toString(36)}${isBun ? 'b' : 'n'}`

/** Each class behind one small interface. */
const kinds = {
  LruCache: () => {
    const c = new LruCache({ capacity: 1000 })
    return {
      set: (k, v) => c.set(k, v),
      get: (k) => c.get(k),
      getMany: (ks) => c.getMany(ks),
      size: () => c.size,
      keys: () => [...c.keys()],
      done: () => {},
    }
  },
  SharedMap: () => {
    const name = `keys${tag}`
    SharedMap.unlink(name)
    const m = SharedMap.create(name, { capacity: 1000, maxKeyBytes: 1024 })
    return {
      set: (k, v) => m.set(k, v),
      get: (k) => m.get(k),
      getMany: (ks) => m.getMany(ks),
      size: () => m.size,
      keys: () => [...m.keys()],
      done: () => {
        m.close()
        SharedMap.unlink(name)
      },
    }
  },
  FlowTable: () => {
    const f = new FlowTable({ timeout: 1000, clock: 'manual' })
    return {
      set: (k, v) => f.set(k, v),
      get: (k) => f.get(k),
      getMany: (ks) => Array.from(f.touchMany(ks), (hit, i) => (hit ? f.get(ks[i]) : undefined)),
      size: () => f.size,
      keys: () => {
        // the keys come back from expire (a manual clock moved past the timeout)
        f.advanceTime(2000)
        return f.expire().map((e) => e.key)
      },
      done: () => f.close(),
    }
  },
}

// Distinct keys: every one of these is its own entry.
const distinct = [
  '', '1', 1, 1n, Buffer.from('1'), 2.5, -(2n ** 70n), 2n ** 70n, 0, 0n, NaN, '0', 'NaN',
  'ключ-'.repeat(40), 'emoji 🎉', 'héllo', '日本語', 'k:42', Buffer.from([]), Buffer.from([0, 1, 2]),
  // lone surrogates are their own keys: not U+FFFD, and not one another
  'lone \uD800 high', 'lone \uDC00 low', '\uDBFF', 'a\uD800', 'a\uDFFF', 'a\uFFFD', '\uDC00\uD800',
  '\uD834\uDD1E', 'x'.repeat(300), Number.MAX_SAFE_INTEGER, -1.5, 1e300,
]
// Aliases: [another value, the key above it means].
const aliases = [
  [-0, 0],
  [1.0, 1],
  [Number.NaN, NaN],
  [0 / 0, NaN],
  [-0n, 0n],
  [new Uint8Array([0x31]), Buffer.from('1')],
  [new Uint8Array(0), Buffer.from([])],
  [Buffer.from('héllo'), null], // bytes are never a string key
]
// Keys that must not be found after the distinct ones are stored: prefixes and neighbours.
const absent = ['x'.repeat(299), 'x'.repeat(301), 'ключ-'.repeat(39), 3, 2n, Buffer.from('2'), 'lone \uD801 high']

const sameKey = (a, b) =>
  ArrayBuffer.isView(a) && ArrayBuffer.isView(b)
    ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
    : Object.is(a, b)
const show = (k) => (ArrayBuffer.isView(k) ? `bytes[${[...k]}]` : typeof k === 'bigint' ? `${k}n` : JSON.stringify(k) ?? String(k))

for (const [cls, make] of Object.entries(kinds)) {
  test(`${cls}: the same keys are distinct, aliased and absent as in every class`, (t) => {
    const s = make()
    try {
      distinct.forEach((k, i) => s.set(k, i))
      t.is(s.size(), distinct.length, 'every distinct key is its own entry')
      distinct.forEach((k, i) => t.is(s.get(k), i, `get(${show(k)})`))
      for (const [alias, of] of aliases) {
        const want = of === null ? undefined : distinct.findIndex((k) => sameKey(k, of))
        t.is(s.get(alias), want, `get(${show(alias)}) finds ${of === null ? 'nothing' : show(of)}`)
      }
      for (const k of absent) t.is(s.get(k), undefined, `get(${show(k)}) misses`)
      const batch = [...distinct, ...absent, ...aliases.map(([a]) => a)]
      t.deepEqual(s.getMany(batch), batch.map((k) => s.get(k)), 'batch lookups equal single lookups')
    } finally {
      s.done()
    }
  })

  test(`${cls}: keys come back with their type`, (t) => {
    const s = make()
    try {
      const roundTrip = distinct
      roundTrip.forEach((k, i) => s.set(k, i))
      const back = s.keys()
      t.is(back.length, roundTrip.length)
      for (const k of roundTrip) {
        const found = back.find((b) => sameKey(b, k) && typeof b === typeof k)
        t.true(found !== undefined || back.some((b) => sameKey(b, k)), `${show(k)} came back`)
        if (ArrayBuffer.isView(k)) t.true(back.some((b) => Buffer.isBuffer(b) && sameKey(b, k)), `${show(k)} came back as a Buffer`)
        else t.true(back.some((b) => Object.is(b, k)), `${show(k)} came back as a ${typeof k}`)
      }
    } finally {
      s.done()
    }
  })
}

test('batch calls read every kind of key exactly like single calls (string packing, lone surrogates)', (t) => {
  const strings = ['', 'a', 'héllo', '日本語', '😀 emoji', 'lone \uD800 high', 'lone \uDC00 low', '\uDBFF', 'x'.repeat(300), 'k:42']
  const others = [0, -0, 42, 1.5, NaN, 7n, -7n, 2n ** 70n, Buffer.from('buf'), new Uint8Array([1, 2, 3])]
  const keys = [...strings, ...others, ...strings.map((s) => s + '!')]
  for (const withPack of [keys, keys.slice(0, 5)]) {
    const c = new LruCache({ capacity: 1000 })
    withPack.forEach((k, i) => c.set(k, i))
    t.deepEqual(c.getMany(withPack), withPack.map((k) => c.peek(k)))
    t.true(c.getMany(withPack).every((v) => v !== undefined), 'every key found again by getMany')
    const m = SharedMap.create(`pk${process.pid.toString(36)}${withPack.length}${isBun ? 'b' : 'n'}`, { capacity: 1000, maxKeyBytes: 512 })
    try {
      withPack.forEach((k, i) => m.set(k, i))
      t.deepEqual(m.getMany(withPack), withPack.map((k) => m.get(k)))
      t.true(m.getMany(withPack).every((v) => v !== undefined))
    } finally {
      SharedMap.unlink(m.name)
      m.close()
    }
    const f = new FlowTable({ timeout: 1000, clock: 'manual' })
    withPack.forEach((k, i) => f.set(k, i))
    t.true(f.touchMany(withPack).every((x) => x === 1))
    t.true(Array.from(f.touchMany(withPack.map((k) => (typeof k === 'string' ? k + '?' : 999)))).every((x) => x === 0))
  }
})
