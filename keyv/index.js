'use strict'
// `lrukit/keyv`: Keyv storage adapters over lrukit's caches, written to Keyv v5's storage-adapter
// contract (Keyv v6 takes them through its KeyvBridgeAdapter). Keyv is not a dependency: an
// adapter is an EventEmitter with get/set/delete/clear and the optional batch methods.
//
// Contract, for both classes:
// - Keys arrive as Keyv makes them (`${namespace}:${key}` under Keyv 5; `${namespace}::${key}` from
//   Keyv 6's bridge) and are stored as they arrive; `clear()` removes only the keys of
//   `this.namespace` (set by Keyv 5), or every key when there is none.
// - Values are stored as handed over: Keyv's serialized strings by default, the raw
//   `{ value, expires }` envelope when Keyv's serializer is off (kept by reference in an
//   LruCache; stored as JSON in a SharedMap opened with `json: true`, the default of the maps
//   these adapters open).
// - `ttl` is in ms: a positive finite number becomes the entry's TTL; `undefined`, `0` or
//   `Infinity` give the entry the store's default TTL (none unless configured); a negative ttl
//   means already expired, so the key is deleted. Keyv checks `expires` itself on every read; the
//   store's TTL reclaims the memory.
// - A store error (EVALUETOOLONG, EFULL, ETIMEDOUT, ECLOSED, ...) never rejects: it is emitted
//   as an 'error' event (Keyv re-emits it) and the call resolves as a failure: `set` → false,
//   `get` → undefined, `has`/`delete`/`deleteMany` → false, `getMany` → undefined for every key,
//   `setMany` → false for each failed entry, `clear` → undefined. With no 'error' listener
//   (a store used without Keyv), emitting throws, as for any EventEmitter, so the call rejects
//   with the error instead.
// - KeyvSharedMap's `invalidation` option (cross-host invalidation over Redis pub/sub) lives in
//   keyv/invalidation.js, loaded only when the option is given; its races are described there.
const { EventEmitter } = require('node:events')

const { LruCache, SharedMap } = require('../index.js')

/** Default `memorySize` of a map a KeyvSharedMap opens: 16 MiB. */
const DEFAULT_MEMORY_SIZE = 16 * 2 ** 20
/** Default `capacity` of a cache a KeyvLruCache makes: 10,000 entries (880 kB of table). */
const DEFAULT_CAPACITY = 10_000

function invalidArgument(message) {
  const error = new TypeError(message)
  error.code = 'ERR_LRUKIT_INVALID_ARGUMENT'
  return error
}

/** The write options for a Keyv ttl; `null` when the ttl means "already expired". */
function writeOptions(ttl) {
  if (ttl === undefined || ttl === null || ttl === 0 || ttl === Infinity) return undefined
  if (typeof ttl === 'number' && ttl < 0) return null
  // A positive number, or something the store rejects with ERR_LRUKIT_INVALID_TTL.
  return { ttl }
}

/** The shared implementation: `this._store` is a SharedMap or an LruCache. */
class KeyvLrukitStore extends EventEmitter {
  constructor(store, owned, opts) {
    super()
    this._store = store
    this._owned = owned
    /** The options the adapter was made with. Keyv reads `opts` (and the test suite writes to it). */
    this.opts = opts
    /** Set by Keyv 5 to its namespace; `clear()` and `iterator()` use it. */
    this.namespace = undefined
  }

  /** Emits `error` and returns `result` (throws `error` when nobody listens, like any emitter). */
  _fail(error, result) {
    this.emit('error', error)
    return result
  }

  /**
   * An error no call is waiting for (Redis connection errors of the invalidation): an `error`
   * event when someone listens (Keyv always does), else one process warning, never a throw.
   */
  _background(error) {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error)
    } else if (!this._warned) {
      this._warned = true
      process.emitWarning(`lrukit/keyv: ${error?.message ?? error} (listen for 'error' on the store or its Keyv to see every error)`, {
        code: 'LRUKIT_KEYV_BACKGROUND_ERROR',
      })
    }
  }

  async get(key) {
    try {
      return this._store.get(key)
    } catch (error) {
      return this._fail(error, undefined)
    }
  }

  async getMany(keys) {
    try {
      return this._store.getMany(keys)
    } catch (error) {
      return this._fail(
        error,
        keys.map(() => undefined),
      )
    }
  }

  async has(key) {
    try {
      return this._store.has(key)
    } catch (error) {
      return this._fail(error, false)
    }
  }

  async set(key, value, ttl) {
    try {
      return this._write(key, value, ttl)
    } catch (error) {
      return this._fail(error, false)
    }
  }

  async setMany(entries) {
    const results = []
    for (const { key, value, ttl } of entries) {
      try {
        results.push(this._write(key, value, ttl))
      } catch (error) {
        results.push(this._fail(error, false))
      }
    }
    return results
  }

  async delete(key) {
    try {
      return this._store.delete(key)
    } catch (error) {
      return this._fail(error, false)
    }
  }

  /** True when every key was deleted (Keyv 5's own fallback for stores without `deleteMany`). */
  async deleteMany(keys) {
    try {
      let all = true
      for (const key of keys) all = this._store.delete(key) && all
      return all
    } catch (error) {
      return this._fail(error, false)
    }
  }

  /**
   * Removes the keys of the current namespace (those starting with `${namespace}:`), or every
   * key when there is no namespace. A namespace costs a pass over the store's keys (a snapshot)
   * and one delete per key of the namespace.
   */
  async clear() {
    try {
      const prefix = this.namespace ? `${this.namespace}:` : undefined
      if (prefix === undefined) {
        this._store.clear()
        return
      }
      for (const key of this._store.keys()) {
        if (typeof key === 'string' && key.startsWith(prefix)) this._store.delete(key)
      }
    } catch (error) {
      this._fail(error, undefined)
    }
  }

  /**
   * `[key, value]` pairs of the string keys that start with `${namespace}:` (every string key
   * when `namespace` is empty), keys as stored and values as Keyv handed them over. The keys are a snapshot taken
   * when iteration starts; values are read as it goes (without changing recency), and keys deleted
   * or expired meanwhile are skipped. Keyv 5 does not call this (its `keyv.iterator` is only for
   * a Map or the SQL/Mongo/Redis/etcd adapters); Keyv 6's bridge uses it for `keyv.iterator()`
   * and to clear a namespace.
   */
  async *iterator(namespace = this.namespace) {
    const prefix = namespace ? `${namespace}:` : undefined
    let keys
    try {
      keys = [...this._store.keys()]
    } catch (error) {
      this._fail(error, undefined)
      return
    }
    for (const key of keys) {
      // Keyv's keys are strings: skip keys of other types (a map shared with other code may hold
      // them) and the `undefined` an LruCache's keys() snapshot can hold for an expired entry.
      if (typeof key !== 'string' || (prefix !== undefined && !key.startsWith(prefix))) continue
      let value
      try {
        value = this._store.peek(key)
      } catch (error) {
        this._fail(error, undefined)
        return
      }
      if (value !== undefined) yield [key, value]
    }
  }
}

/**
 * A Keyv store in a SharedMap: one cache for every process on the machine.
 * `new KeyvSharedMap(name, options?)` opens (or creates) the map `name` with SharedMap's
 * `openOrCreate` options, defaulting to `{ memorySize: 16 MiB, json: true }`; the adapter owns
 * that handle and `disconnect()` closes it (it never unlinks: see SharedMap.unlink).
 * `new KeyvSharedMap(map, { invalidation }?)` uses an open SharedMap as is; `disconnect()` leaves
 * it open.
 * `invalidation: { url, channel?, tombstoneMs?, clearOnReconnect? }` publishes the key of every
 * set, delete and clear on a Redis channel and drops the keys other hosts publish (see
 * keyv/invalidation.js); without it nothing but the map is touched.
 */
class KeyvSharedMap extends KeyvLrukitStore {
  constructor(nameOrMap, options) {
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw invalidArgument('KeyvSharedMap: options must be an object of SharedMap.openOrCreate options')
    }
    const { invalidation, ...mapOptions } = options ?? {}
    // Checked before a map is opened, so an invalid option leaves nothing behind.
    const invalidationOptions = invalidation === undefined ? undefined : require('./invalidation.js').invalidationOptions(invalidation)
    if (typeof nameOrMap === 'string') {
      if (mapOptions.memorySize === undefined && mapOptions.capacity === undefined) {
        mapOptions.memorySize = DEFAULT_MEMORY_SIZE
      }
      if (mapOptions.json === undefined) mapOptions.json = true
      const map = SharedMap.openOrCreate(nameOrMap, mapOptions)
      super(map, true, { ...mapOptions, name: nameOrMap, dialect: 'lrukit-shared-map', url: 'lrukit://shared-map' })
    } else if (nameOrMap instanceof SharedMap) {
      const extra = Object.keys(mapOptions)
      if (extra.length > 0) {
        throw invalidArgument(`KeyvSharedMap: an open map takes only { invalidation }, not ${extra.join(', ')}`)
      }
      super(nameOrMap, false, { name: nameOrMap.name, dialect: 'lrukit-shared-map', url: 'lrukit://shared-map' })
    } else {
      throw invalidArgument('KeyvSharedMap: expected a map name or an open SharedMap')
    }
    /** The Redis side (keyv/invalidation.js), or null. */
    this._inv = null
    if (invalidationOptions !== undefined) {
      const { Invalidation } = require('./invalidation.js')
      try {
        this._inv = new Invalidation(this, this._store, invalidationOptions)
      } catch (error) {
        if (this._owned) this._store.close()
        throw error
      }
      this.opts.invalidation = { ...invalidationOptions }
    }
  }

  /** The SharedMap handle (for `stats()`, `verify()`, ...). */
  get map() {
    return this._store
  }

  /**
   * The invalidation's state: `{ channel, mapId, connected, stats }` (stats: `published` messages,
   * `announced` keys and clears, `received` and `ignored` (same host) messages, keys `dropped`,
   * fills `refused` by a tombstone, subscriber `reconnects`), or null without `invalidation`.
   */
  get invalidation() {
    const inv = this._inv
    if (inv === null) return null
    let mapId = null
    try {
      mapId = inv.mapId()
    } catch {
      // a closed map
    }
    return { channel: inv.channel, mapId, connected: inv.connected, stats: { ...inv.stats } }
  }

  /**
   * Resolves true once the store publishes and is subscribed (at once without `invalidation`),
   * false if it is disconnected first. Never rejects; Redis down keeps it pending.
   */
  ready() {
    return this._inv === null ? Promise.resolve(!this._store.closed) : this._inv.readyPromise
  }

  async get(key) {
    try {
      const value = this._store.get(key)
      if (value === undefined && this._inv !== null) this._inv.missed(key)
      return value
    } catch (error) {
      return this._fail(error, undefined)
    }
  }

  async getMany(keys) {
    try {
      const values = this._store.getMany(keys)
      if (this._inv !== null) {
        for (let i = 0; i < keys.length; i++) if (values[i] === undefined) this._inv.missed(keys[i])
      }
      return values
    } catch (error) {
      return this._fail(
        error,
        keys.map(() => undefined),
      )
    }
  }

  _write(key, value, ttl) {
    const options = writeOptions(ttl)
    const inv = this._inv
    if (options === null) {
      this._store.delete(key)
      inv?.forget(key)
      inv?.announce(key, null)
      return true
    }
    if (inv === null) return this._store.set(key, value, options)
    const fp = inv.admit(key, value)
    // A fill refused by a tombstone: as if stored and dropped at once (keyv/invalidation.js (a)).
    if (fp === null) return true
    const stored = this._store.set(key, value, options)
    // '' for a fill: stored, not published.
    if (stored && fp !== '') inv.announce(key, fp)
    return stored
  }

  /** Deletes `key` (and announces it, unless Keyv is deleting an entry it found expired). */
  _remove(key) {
    const inv = this._inv
    if (inv === null) return this._store.delete(key)
    const expired = inv.expiredEnvelope(this._store.peek(key))
    const removed = this._store.delete(key)
    if (expired) {
      inv.missed(key) // Keyv's own clean-up on a read: the next set is a fill
    } else {
      inv.forget(key)
      inv.announce(key, null)
    }
    return removed
  }

  async delete(key) {
    try {
      return this._remove(key)
    } catch (error) {
      return this._fail(error, false)
    }
  }

  async deleteMany(keys) {
    try {
      let all = true
      for (const key of keys) all = this._remove(key) && all
      return all
    } catch (error) {
      return this._fail(error, false)
    }
  }

  async clear() {
    await super.clear()
    this._inv?.announceClear(this.namespace || null)
  }

  /** Publishes what is pending and closes the Redis connections; closes the map if this adapter opened it. */
  async disconnect() {
    if (this._inv !== null) await this._inv.close()
    if (this._owned) this._store.close()
  }
}

/**
 * A Keyv store in an in-process LruCache: a native index over the stored values, a fixed capacity with LRU
 * eviction. `new KeyvLruCache(options?)` makes an LruCache (`capacity` defaults to 10,000);
 * `new KeyvLruCache(cache)` uses an existing one. `disconnect()` empties a cache the adapter made
 * and leaves a given one alone; the adapter stays usable either way.
 */
class KeyvLruCache extends KeyvLrukitStore {
  constructor(optionsOrCache) {
    if (optionsOrCache instanceof LruCache) {
      super(optionsOrCache, false, { capacity: optionsOrCache.capacity, dialect: 'lrukit-lru-cache', url: 'lrukit://lru-cache' })
    } else if (optionsOrCache === undefined || (optionsOrCache !== null && typeof optionsOrCache === 'object')) {
      const cacheOptions = { capacity: DEFAULT_CAPACITY, ...optionsOrCache }
      super(new LruCache(cacheOptions), true, { ...cacheOptions, dialect: 'lrukit-lru-cache', url: 'lrukit://lru-cache' })
    } else {
      throw invalidArgument('KeyvLruCache: expected LruCache options or an LruCache')
    }
  }

  /** The LruCache (for `size`, `popLru()`, ...). */
  get cache() {
    return this._store
  }

  async getMany(keys) {
    try {
      // LruCache.getMany leaves misses as holes; Keyv 5 walks the result with for...in, which
      // skips holes, so it would shift the values after a miss. Array.from fills them with undefined.
      return Array.from(this._store.getMany(keys))
    } catch (error) {
      return this._fail(
        error,
        keys.map(() => undefined),
      )
    }
  }

  _write(key, value, ttl) {
    const options = writeOptions(ttl)
    if (options === null) {
      this._store.delete(key)
      return true
    }
    this._store.set(key, value, options)
    return true
  }

  /** Empties the cache if this adapter made it. */
  async disconnect() {
    if (this._owned) this._store.clear()
  }
}

exports.KeyvSharedMap = KeyvSharedMap
exports.KeyvLruCache = KeyvLruCache
