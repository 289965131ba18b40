// Type tests: what a strict TypeScript user writes compiles with no casts, and every wrong use
// below fails to compile (each `@ts-expect-error` line is itself an error if it compiles).
// Checked by `tsc` under moduleResolution node16 and bundler (tsconfig.*.json here).
import { FlowTable, LruCache, SharedMap, isLrukitError, type FlowExpired, type LrukitErrorCode, type LruDumpEntry, type LruEntry } from 'lrukit'
import { KeyvLruCache, KeyvSharedMap } from 'lrukit/keyv'

interface User {
  name: string
  age: number
}
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
function assertType<T extends true>(): T | void {}

// ---- LruCache<K, V> ---------------------------------------------------------------------------
const users = new LruCache<string, User>({ capacity: 1000 })
users.set('ada', { name: 'Ada', age: 36 })
const ada = users.get('ada')
assertType<Equals<typeof ada, User | undefined>>()
const oldest = users.popLru()
assertType<Equals<typeof oldest, LruEntry<string, User> | undefined>>()
if (oldest) {
  const key: string = oldest.key
  const age: number = oldest.value.age
  void [key, age]
}
for (const [k, v] of users) void [k.toUpperCase(), v.name]
for (const k of users.keys()) void k.toUpperCase()
for (const v of users.values()) void v.age
const many: Array<User | undefined> = users.getMany(['a', 'b'])
users.setMany([['b', { name: 'B', age: 1 }]])
const loaded: Promise<User | undefined> = users.fetch('c', async (key) => ({ name: key, age: 0 }))
const dumped = users.dump()
assertType<Equals<typeof dumped, Array<[string, LruDumpEntry<User>]>>>()
users.load(dumped)
// @ts-expect-error entries of another cache's types
users.load([[1, { value: 'x' }]])
const written: Promise<number> = SharedMap.open('types-counters').dump('/tmp/counters.lrukit')
// @ts-expect-error a number key in a cache of string keys
users.get(1)
// @ts-expect-error a value of the wrong type
users.set('x', { name: 'X' })
// @ts-expect-error the loader must produce a User
void users.fetch('d', async () => 'not a user')
// @ts-expect-error capacity is required
new LruCache<string, User>({})
const offHeap = new LruCache<string, string>({ capacity: 10, offHeap: true })
// @ts-expect-error offHeap is a boolean
new LruCache<string, string>({ capacity: 10, offHeap: 'yes' })
// Untyped use keeps compiling: keys of every kind, values unknown.
const any = new LruCache({ capacity: 10 })
any.set(1n, Symbol('x')).set(Buffer.from('k'), null)
const unknownValue: unknown = any.get('k')
void [many, loaded, unknownValue, written, offHeap]

// ---- SharedMap<V> ------------------------------------------------------------------------------
const counters = SharedMap.openOrCreate<number>('types-counters', { capacity: 100 })
counters.set('hits', 1)
const hits = counters.get('hits')
assertType<Equals<typeof hits, number | undefined>>()
// @ts-expect-error a string in a map of numbers
counters.set('hits', 'one')
// @ts-expect-error compareAndSet takes the map's values
counters.compareAndSet('hits', 1, 'two')
for (const [, v] of counters) void v.toFixed()
for (const [, v] of counters.entries()) void v.toFixed()
const n: Array<number | undefined> = counters.getMany(['hits'])
// Object values: the JSON-typed form needs { json: true }.
const sessions = SharedMap.create<User>('types-sessions', { capacity: 100, json: true })
const s = sessions.get('u1')
assertType<Equals<typeof s, User | undefined>>()
const reopened: SharedMap<User> = SharedMap.open<User>('types-sessions', { json: true })
// @ts-expect-error a map of objects without { json: true }
SharedMap.create<User>('types-sessions', { capacity: 100 })
// @ts-expect-error open of a map of objects without { json: true }
SharedMap.open<User>('types-sessions')
const plain: SharedMap = SharedMap.open('types-counters')
const stored: string | number | bigint | boolean | object | null | Uint8Array | undefined = plain.get('x')
const page: Promise<string | undefined> = SharedMap.open<string>('types-pages').fetch('/', async () => '<html>')
void [n, reopened, stored, page]

// ---- FlowTable<K, V> --------------------------------------------------------------------------
const flows = new FlowTable<string, number>({
  timeout: 30_000,
  onExpire: (entries) => {
    for (const e of entries) void [e.key.toUpperCase(), e.value.toFixed()]
  },
})
flows.set('10.0.0.1:443', 1)
const f = flows.getAndTouch('10.0.0.1:443')
assertType<Equals<typeof f, number | undefined>>()
const expired = flows.expire()
assertType<Equals<typeof expired, FlowExpired<string, number>[]>>()
const sharedFlows = FlowTable.shared<string, number>('types-flows', { timeout: 1000 })
assertType<Equals<typeof sharedFlows, FlowTable<string, number>>>()
// @ts-expect-error a bigint key in a table of string keys
flows.touch(1n)
// @ts-expect-error a string value in a table of numbers
flows.set('k', 'v')
// @ts-expect-error a table of objects without { json: true }
new FlowTable<string, User>({ timeout: 1000 })
const jsonFlows = new FlowTable<string, User>({ timeout: 1000, json: true })
void jsonFlows

// ---- using: handles close at the end of the scope ------------------------------------------
export function scoped(): number | undefined {
  using map = SharedMap.open<number>('types-counters')
  using table = new FlowTable<string, number>({ timeout: 1000 })
  table.set('a', 1)
  return map.get('hits')
}

// ---- errors: narrow on the code ------------------------------------------------------------
export function handle(error: unknown): LrukitErrorCode | undefined {
  if (isLrukitError(error, 'EFULL')) {
    assertType<Equals<typeof error.code, 'EFULL'>>()
    return error.code
  }
  if (isLrukitError(error)) {
    const code: LrukitErrorCode = error.code
    return code
  }
  // @ts-expect-error not a code lrukit throws
  isLrukitError(error, 'ENOTACODE')
  return undefined
}

// ---- lrukit/keyv -----------------------------------------------------------------------------
const l1 = new KeyvSharedMap('types-keyv', { capacity: 100 })
const typedL1 = new KeyvSharedMap(SharedMap.openOrCreate<string>('types-keyv', { capacity: 100 }))
const typedMap: SharedMap<string> = typedL1.map
const local = new KeyvLruCache(new LruCache<string, string>({ capacity: 100 }))
const fromLocal: Promise<string | { value?: string; expires?: number | undefined } | undefined> = local.get('k')
// @ts-expect-error the store's values are strings
const notString: Promise<number | undefined> = local.get('k')
void [l1, typedMap, fromLocal, notString]
