// `lrukit/keyv`: Keyv storage adapters (the Keyv v5 storage-adapter contract; Keyv v6 takes
// them through its bridge). Keyv itself is not needed to type-check these declarations.
import { EventEmitter } from 'node:events'

import type { LruCache, LruCacheOptions, SharedMap, SharedMapOptions, StoredValue } from '../index'

/**
 * What a store holds for Keyv: its serialized string by default, or its `{ value, expires }`
 * envelope when Keyv's serializer is off (Keyv's own `StoredData`).
 */
export type KeyvStoredData<Value> = Value | { value?: Value; expires?: number | undefined } | undefined

/** One entry of `setMany`, as Keyv hands it over (`ttl` in ms). */
export interface KeyvLrukitEntry {
  key: string
  value: unknown
  ttl?: number | undefined
}

/**
 * What both adapters share. Store errors (`EVALUETOOLONG`, `EFULL`, `ETIMEDOUT`, `ECLOSED`, ...)
 * never reject: they are emitted as `'error'` events (Keyv re-emits them) and the call resolves
 * as a failure (`set` → `false`, `get` → `undefined`, ...). Without an `'error'` listener the
 * call rejects with the error instead, as emitting `'error'` throws.
 */
declare abstract class KeyvLrukitStore<V = unknown> extends EventEmitter {
  /** The options the adapter was made with (Keyv reads them). */
  opts: Record<string, unknown>
  /** Set by Keyv 5: `clear()` and `iterator()` act on the keys that start with `${namespace}:`. */
  namespace: string | undefined
  /** The stored value as Keyv handed it over, or `undefined` (missing or expired). */
  get<Value = V>(key: string): Promise<KeyvStoredData<Value>>
  /** `get` for many keys: values in order, `undefined` for misses. */
  getMany<Value = V>(keys: string[]): Promise<Array<KeyvStoredData<Value | undefined>>>
  has(key: string): Promise<boolean>
  /**
   * Stores `value`; `ttl` in ms (`undefined`/`0`: the store's default TTL, none unless configured;
   * negative: already expired, the key is deleted). `false` when the store refused it.
   */
  set(key: string, value: unknown, ttl?: number): Promise<boolean>
  /** One result per entry: `false` where the store refused it. */
  setMany(entries: KeyvLrukitEntry[]): Promise<boolean[]>
  // Keyv 5 declares an adapter's `setMany` as returning `Promise<void>` (while it hands the
  // store's result back from `keyv.setMany`); this overload keeps `new Keyv(store)` type-checking.
  setMany(entries: KeyvLrukitEntry[]): Promise<void>
  delete(key: string): Promise<boolean>
  /** `true` when every key was deleted. */
  deleteMany(keys: string[]): Promise<boolean>
  /** Removes the keys of the current namespace, or every key when there is none. */
  clear(): Promise<void>
  /**
   * `[key, value]` pairs whose key starts with `${namespace}:` (every key when `namespace` is
   * empty), keys as stored. Keyv 5 does not call it (its `keyv.iterator` is only for a `Map` or
   * the SQL, Mongo, Redis, Valkey and etcd adapters); Keyv 6's bridge does.
   */
  iterator<Value = V>(namespace?: string): AsyncGenerator<[string, Awaited<Value> | undefined], void>
  disconnect(): Promise<void>
}

/**
 * Cross-host invalidation over Redis pub/sub (`KeyvSharedMap`'s `invalidation` option). Needs the
 * optional peer dependency `@redis/client` (without it the constructor throws an `Error` with code
 * `ERR_LRUKIT_MISSING_PEER`); an invalid option throws `ERR_LRUKIT_INVALID_ARGUMENT`.
 */
export interface KeyvSharedMapInvalidationOptions {
  /** The Redis server, e.g. `redis://10.0.0.5:6379` (user, password, db and `rediss://` TLS as `@redis/client` takes them). */
  url: string
  /** The pub/sub channel. Default `'lrukit:invalidate'`. */
  channel?: string | undefined
  /**
   * How long (ms) a received invalidation refuses back-fills of its key that may be stale (see the
   * README's "Outgrowing one machine"). Default 1000; 0 turns tombstones off.
   */
  tombstoneMs?: number | undefined
  /**
   * Whether the store clears its namespace in the map when its subscriber reconnects (messages
   * sent meanwhile are lost). Default true.
   */
  clearOnReconnect?: boolean | undefined
}

/** Options of `new KeyvSharedMap(name, options)`: `SharedMap.openOrCreate`'s, plus `invalidation`. */
export interface KeyvSharedMapOptions extends SharedMapOptions {
  invalidation?: KeyvSharedMapInvalidationOptions | undefined
}

/** What `store.invalidation` reports. */
export interface KeyvSharedMapInvalidationState {
  channel: string
  /** The id this host's map carries in its messages (null once the map is closed). */
  mapId: string | null
  /** Whether both Redis connections (publisher and subscriber) are up. */
  connected: boolean
  stats: {
    /** Messages published. */
    published: number
    /** Keys and clears announced (several share a message). */
    announced: number
    /** Messages received, and those of them from this same map (ignored). */
    received: number
    ignored: number
    /** Keys this process dropped from the map on receipt. */
    dropped: number
    /** Back-fills a tombstone refused. */
    refused: number
    /** Times the subscriber reconnected. */
    reconnects: number
  }
}

/** The `'invalidate'` event: keys and namespaces dropped from this host's map. */
export interface KeyvSharedMapInvalidateEvent {
  /** `'message'`: another host's message; `'reconnect'`: the subscriber reconnected (`clearOnReconnect`). */
  reason: 'message' | 'reconnect'
  keys: string[]
  /** Namespaces cleared; `null` stands for every key. */
  namespaces: Array<string | null>
}

/**
 * A Keyv store in a SharedMap, shared by every process on the machine.
 * `new KeyvSharedMap(name, options?)` opens or creates the map with `SharedMap.openOrCreate`
 * (defaults: `memorySize` 16 MiB when neither it nor `capacity` is given, `json: true`); the
 * adapter owns that handle: `disconnect()` closes it (and never unlinks the map).
 * `new KeyvSharedMap(map, { invalidation }?)` uses an open SharedMap, which `disconnect()` leaves
 * open. With `invalidation`, every set, delete and clear publishes its key on Redis and the keys
 * other hosts publish are dropped from the map; `disconnect()` also closes the Redis connections.
 */
export declare class KeyvSharedMap<V extends StoredValue = StoredValue> extends KeyvLrukitStore<V> {
  constructor(name: string, options?: KeyvSharedMapOptions)
  constructor(map: SharedMap<V>, options?: { invalidation?: KeyvSharedMapInvalidationOptions | undefined })
  /** The SharedMap handle (`stats()`, `verify()`, ...). */
  readonly map: SharedMap<V>
  /** The invalidation's channel, map id, connection and counters; null without `invalidation`. */
  readonly invalidation: KeyvSharedMapInvalidationState | null
  /**
   * Resolves true once the store publishes and is subscribed (at once without `invalidation`),
   * false if it is disconnected first; never rejects (Redis down keeps it pending).
   */
  ready(): Promise<boolean>
  on(event: 'invalidate', listener: (event: KeyvSharedMapInvalidateEvent) => void): this
  on(event: 'error', listener: (error: Error & { code?: string }) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
}

/**
 * A Keyv store in an in-process LruCache. `new KeyvLruCache(options?)` makes one (`capacity`
 * defaults to 10,000); `new KeyvLruCache(cache)` uses an existing one. `disconnect()` empties a
 * cache the adapter made and leaves a given one alone.
 */
export declare class KeyvLruCache<V = unknown> extends KeyvLrukitStore<V> {
  constructor(options?: Partial<LruCacheOptions>)
  constructor(cache: LruCache<string, V>)
  /** The LruCache (`size`, `popLru()`, ...). */
  readonly cache: LruCache<string, V>
}

export {}
