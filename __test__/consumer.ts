// Compiled with `tsc --noEmit` (npm run test:types): a consumer of the public
// types as an application would write it. Lines marked @ts-expect-error must
// stay errors, so the types reject what the runtime rejects.
import {
  LruCache,
  SharedMap,
  FlowTable,
  type FetchLoader,
  type FetchOptions,
  type LruEntry,
  type LruDumpEntry,
  type LruKey,
  type LruCacheOptions,
  type SharedMapOptions,
  type SharedMapStats,
  type SharedMapSegmentInfo,
  type SharedValue,
  type FlowExpired,
} from 'lrukit'

const options: LruCacheOptions = { capacity: 1000, ttl: 60_000 }
const cache = new LruCache(options)
const same: LruCache = cache.set('user:1', { name: 'Ada' }).set(42, 'answer', { ttl: 5, timestamp: Date.now() })
const hit: unknown = same.get('user:1')
const user = hit as { name: string } | undefined
const name: string | undefined = user?.name
const has: boolean = cache.has(1n) || cache.has(Buffer.from('k')) || cache.has(new Uint8Array([1]))
const removed: boolean = cache.delete('user:1')
const size: number = cache.size + cache.capacity
const popped: LruEntry | undefined = cache.popLru()
const oldest: LruEntry | undefined = cache.peekLru()
const key: LruKey | undefined = popped?.key
const stamp: number | undefined = oldest?.timestamp
const many: unknown[] = cache.getMany(['a', 1, 2n])
cache.setMany([
  ['a', 1],
  [2, { b: 2 }],
])
for (const [k, v] of cache) {
  const kk: LruKey = k
  void kk
  void v
}
const keys: LruKey[] = [...cache.keys()]
const values: unknown[] = [...cache.values()]
const entries: Array<[LruKey, unknown]> = [...cache.entries()]
const purged: number = cache.purgeStale()
cache.clear()
new LruCache({ capacity: Infinity })
// dump and load, in lru-cache's shape
const dumped: Array<[LruKey, LruDumpEntry]> = cache.dump()
cache.load(dumped)
cache.load([['k', { value: 1, ttl: 10, start: Date.now() }], [2, { value: 'v' }]])
// @ts-expect-error load takes [key, { value, ttl?, start? }] pairs
cache.load([['k', 1]])

// SharedMap: factories, typed values, stats
const smOptions: SharedMapOptions = { capacity: 1000, maxKeyBytes: 64, maxValueBytes: 256, eviction: 'lru', ttl: 1000, lockTimeout: 250 }
const shared: SharedMap = SharedMap.openOrCreate('consumer', smOptions)
const stored: boolean = shared.set('k', 'v', { ttl: 5 }) && shared.add(1, 2n) && shared.set('b', Buffer.from('x'))
const sv: SharedValue | undefined = shared.get('k') ?? shared.peek('k')
const counted: number | bigint = shared.incr('n', 1, { initial: 0, ttl: 10 })
const swapped: boolean = shared.compareAndSet('k', 'v', 'w')
const st: SharedMapStats = shared.stats()
const lockRecoveries: number = st.lockRecoveries
const report: { ok: boolean; problems: string[] } = shared.verify()
const bytes: number = SharedMap.calcRequiredMemorySize({ capacity: 10, avgValueBytes: 32 })
for (const [k, v] of shared) void [k, v]
const reopened: SharedMap = SharedMap.open(shared.name, { json: true, lockTimeout: 1000 })
reopened.repair()
// @ts-expect-error lockTimeout is a number of ms
SharedMap.open('x', { lockTimeout: '5s' })
const info: SharedMapSegmentInfo = SharedMap.describe(shared.name, { mode: 0o600 })
const infoState: 'ready' | 'creating' | 'creator-died' | 'not-ready' | 'unknown' = info.state
const infoVersion: number | null = info.layoutVersion
// @ts-expect-error a header field is null when the header is not of this build's layout version
const infoShards: number = info.shards
const unlinked: boolean = SharedMap.unlink(shared.name)
export const dumpedCount: Promise<number> = shared.dump('/tmp/consumer.dump')
export const loadedCount: Promise<number> = shared.load('/tmp/consumer.dump')
// @ts-expect-error the file is a path string
shared.dump(1)
shared.close()
export const sharedMany: Array<SharedValue | undefined> = shared.getMany(['a', 1, 2n])
export const sharedUsed = [stored, sv, counted, swapped, lockRecoveries, report, bytes, unlinked, infoState, infoVersion, infoShards, shared.size, shared.closed]
// @ts-expect-error eviction is 'lru' or 'none'
SharedMap.create('x', { capacity: 1, eviction: 'fifo' })
// @ts-expect-error SharedMap has no public constructor arguments
new SharedMap('x')

const flows: FlowTable = new FlowTable({ timeout: 30_000, engine: 'wheel', capacity: 1000 }).set('10.0.0.1', 1)
const fv: SharedValue | undefined = flows.get('10.0.0.1') ?? flows.getAndTouch('x')
const reaped: Array<{ key: LruKey; value: SharedValue; lastSeen: number }> = flows.expire({ max: 100 })
export const flowUsed = [fv, reaped, flows.touch('x'), flows.has('x'), flows.delete('x'), flows.size, FlowTable.shared('n', { timeout: 5 })]
// @ts-expect-error engine is 'wheel' or 'dashmap'
new FlowTable({ timeout: 5, engine: 'btree' })
const watched = new FlowTable({
  timeout: 1000,
  expireInterval: 100,
  expireBatch: 500,
  keepAlive: false,
  onExpire: (entries: FlowExpired[]) => {
    for (const { key, value, lastSeen } of entries) void [key, value, lastSeen.toFixed()]
  },
})
watched.close()
export const touchedMask: Uint8Array = watched.touchMany(['a', 1, 2n, Buffer.from('k')])
export const flowsSetMany: FlowTable = watched.setMany([['a', 1], [2n, 'two']], { timeout: 5 })
export const flowsPurged: number = watched.purge({ max: 10 }) + watched.purge()
// @ts-expect-error onExpire receives the expired entries, not a number
new FlowTable({ timeout: 5, onExpire: (n: number) => n })

// @ts-expect-error capacity is required
new LruCache({ ttl: 5 })
// @ts-expect-error keys are strings, numbers, bigints or bytes
cache.get({})
// @ts-expect-error ttl is a number
cache.set('k', 1, { ttl: '5' })

export const used = [hit, name, has, removed, size, key, stamp, many, keys, values, entries, purged]

// The benchmark probes and napi-rs's aliases of the Rust struct names are not part of the API.
// @ts-expect-error not exported by lrukit
import { noop } from 'lrukit'
// @ts-expect-error not exported by lrukit
import type { JsLruCache } from 'lrukit'
noop()
const viaAlias: JsLruCache | undefined = undefined
void viaAlias

// lrukit/keyv: Keyv storage adapters (keyv 5 and keyv 6 are dev dependencies, the latter as `keyv6`).
import { KeyvLruCache, KeyvSharedMap, type KeyvLrukitEntry, type KeyvStoredData } from 'lrukit/keyv'
import Keyv from 'keyv'
import { Keyv as Keyv6 } from 'keyv6'
export const keyvUsed: unknown[] = []
{
  const byName = new KeyvSharedMap('sessions', { memorySize: 2 ** 24, ttl: 60_000 })
  const byHandle = new KeyvSharedMap(SharedMap.openOrCreate('sessions', { memorySize: 2 ** 24 }))
  const handle: SharedMap = byHandle.map
  const lruDefault = new KeyvLruCache()
  const lruGiven = new KeyvLruCache(new LruCache({ capacity: 10 }))
  const given: LruCache = lruGiven.cache
  const keyv = new Keyv<string>({ store: byName, namespace: 'app' })
  const direct = new Keyv<number>(new KeyvLruCache({ capacity: 1000, ttl: 5000 }))
  const v6 = new Keyv6<string>({ store: byHandle, namespace: 'app' })
  keyv.on('error', (e: Error) => void e.message)
  byHandle.on('error', (e: Error & { code?: string }) => void e.code)
  const entries: KeyvLrukitEntry[] = [{ key: 'a', value: '{"value":1}', ttl: 5 }, { key: 'b', value: 'x' }]
  const stored: Promise<boolean> = lruDefault.set('app:k', 'v', 1000)
  const many: Promise<boolean[]> = lruDefault.setMany(entries)
  const got: Promise<KeyvStoredData<string>> = byHandle.get<string>('app:k')
  const ns: string | undefined = byHandle.namespace
  const iter: AsyncGenerator<[string, unknown], void> = byHandle.iterator('app')
  const closed: Promise<void> = byHandle.disconnect()
  keyvUsed.push(handle, given, keyv, direct, v6, stored, many, got, ns, iter, closed, byHandle.opts, lruDefault.deleteMany(['a']))
  // @ts-expect-error a KeyvSharedMap needs a map name or a SharedMap
  new KeyvSharedMap(new LruCache({ capacity: 1 }))
  // @ts-expect-error a KeyvLruCache takes LruCache options or an LruCache, not a map name
  new KeyvLruCache('sessions')
  // @ts-expect-error ttl is a number of ms
  void lruDefault.set('k', 'v', '5s')
}

// lrukit/keyv with Redis: cross-host invalidation on a KeyvSharedMap, under cacheable and cache-manager.
import type { KeyvSharedMapInvalidateEvent, KeyvSharedMapInvalidationOptions, KeyvSharedMapInvalidationState } from 'lrukit/keyv'
import KeyvRedis from '@keyv/redis'
import { Cacheable } from 'cacheable'
import { createCache } from 'cache-manager'
export const redisTierUsed: unknown[] = []
{
  const invalidation: KeyvSharedMapInvalidationOptions = { url: 'redis://127.0.0.1:6379', channel: 'app:inv', tombstoneMs: 500, clearOnReconnect: false }
  const l1 = new KeyvSharedMap('app-l1', { memorySize: 2 ** 26, ttl: 60_000, invalidation })
  const onHandle = new KeyvSharedMap(SharedMap.openOrCreate('app-l1', { memorySize: 2 ** 26 }), { invalidation: { url: 'redis://127.0.0.1:6379' } })
  const state: KeyvSharedMapInvalidationState | null = l1.invalidation
  const refused: number | undefined = state?.stats.refused
  const ready: Promise<boolean> = l1.ready()
  l1.on('invalidate', (event: KeyvSharedMapInvalidateEvent) => void event.keys.length)
  l1.on('error', (error) => void error.code)
  const cache = new Cacheable({ primary: new Keyv({ store: l1 }), secondary: new KeyvRedis('redis://127.0.0.1:6379') })
  const manager = createCache({ stores: [new Keyv({ store: onHandle }), new Keyv({ store: new KeyvRedis('redis://127.0.0.1:6379') })] })
  const read: Promise<string | undefined> = cache.get<string>('k')
  const wrapped: Promise<number> = manager.wrap('n', async () => 42, 60_000)
  redisTierUsed.push(state, refused, ready, read, wrapped)
  // @ts-expect-error invalidation needs a url
  new KeyvSharedMap('app-l1', { invalidation: { channel: 'x' } })
  // @ts-expect-error an open map takes only { invalidation }
  new KeyvSharedMap(SharedMap.openOrCreate('app-l1', { memorySize: 2 ** 26 }), { memorySize: 1 })
  // @ts-expect-error tombstoneMs is a number of ms
  new KeyvSharedMap('app-l1', { invalidation: { url: 'redis://h', tombstoneMs: '1s' } })
}

// fetch: one loader call per key per host (SharedMap) / per cache (LruCache)
export async function fetchUsed(map: SharedMap<string>, lru: LruCache<string, { id: number }>): Promise<unknown[]> {
  const options: FetchOptions = { ttl: 60_000, staleWhileRevalidate: 5_000, lockTimeout: 2_000, onRefreshError: (e) => void e }
  const page: string | undefined = await map.fetch('page:/', async (key) => `rendered ${String(key)}`, options)
  const loader: FetchLoader<{ id: number }, string> = async (key) => ({ id: key.length })
  const user: { id: number } | undefined = await lru.fetch('user:1', loader, { ttl: 1000 })
  const remaining: number = lru.getRemainingTTL('user:1')
  // @ts-expect-error the loader is required
  await map.fetch('k')
  // @ts-expect-error the loader must produce the map's value type
  await map.fetch('n', () => 42)
  // @ts-expect-error staleWhileRevalidate is a number of ms
  await lru.fetch('k', loader, { staleWhileRevalidate: '5s' })
  return [page, user, remaining]
}
