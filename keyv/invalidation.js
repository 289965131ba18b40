'use strict'
// Cross-host invalidation for KeyvSharedMap: `new KeyvSharedMap(name, { invalidation: { url } })`.
// Loaded by keyv/index.js only when `invalidation` is given; it loads `@redis/client` (an optional
// peer dependency of lrukit, the client @keyv/redis uses), never at `require('lrukit/keyv')`.
//
// The picture: every host has one SharedMap (the L1) that all its processes share, every host talks
// to the same Redis (usually also the L2 a layer above, such as cacheable, writes through), and
// every set, delete and clear made through a KeyvSharedMap publishes the key on a Redis channel
// (default `lrukit:invalidate`). Every other host drops that key from its own map. A message
// carries keys, never values: `{ v: 1, from, keys: [[key, fingerprint | null], ...],
// clear: [namespace | null, ...] }`, where `fingerprint` is a 96-bit SHA-1 prefix of the value
// (Keyv's envelope without its `expires`; `null` for a delete): a host that already holds that
// value keeps it, and a tombstone (below) knows which value was announced.
//
// Writes and fills. A set of a key that this process found missing (get/getMany returned
// undefined, or Keyv deleted the entry as expired) less than max(1 s, tombstoneMs) before is a
// fill: the layer above filling its L1 from L2 (cacheable's back-fill, cache-manager's wrap) or
// from its loader (wrap, getOrSet, cache-aside). A fill changes nothing another host should drop:
// it is stored but not published. (Publishing fills would make hosts that read the same key knock
// each other's copy out, and a stale fill announced by one host would overwrite another host's
// tombstone.) Every other set is a write, and is published. One pattern is taken for a fill
// although it is a write: a read-modify-write that misses in the L1 and writes right away without
// a back-fill in between (cache-manager's get does not back-fill); delete the key first (a delete
// is always published and forgets the miss), or write through a store that did not just miss it.
//
// Same host, same map. Two processes of one host share the map, so a message published by host A's
// process 1 must be ignored by A's process 2 as well (dropping the key would drop 1's own write).
// A host is therefore identified by its map, not its process: the first process that needs an id
// writes a random one into the map under an internal key (a Buffer key, `\0lrukit:map-id`, which
// Keyv's string keys can never equal and which clear(namespace) and iterator() skip), and every
// publish and every receipt reads it back from the map. If the map is cleared or the id is evicted,
// the next reader writes a new one (`add`: all processes agree on it); a message in flight meanwhile
// is taken as foreign and drops a key once, which costs a miss and nothing else. If no id can be
// stored (a full `eviction: 'none'` map), `${os.hostname()}/${map name}` stands in.
//
// Every process subscribes (one subscriber per host would be enough; a key dropped twice is fine),
// over two connections per store: one publishes, one subscribes (RESP2 forbids both on one).
//
// Races, and what closes them:
//
// (a) A back-fill from a stale L2 after an invalidation. The layer above writes L1 and L2 at the
//     same time (cacheable's set runs both in parallel), so A's message can reach B before A's L2
//     write has landed; a reader on B that misses in its L1 (the key was just dropped) reads the OLD
//     value from L2 and back-fills it into B's L1, where it would stay until its TTL. Closed by a
//     tombstone: on receipt, B stores `\0lrukit:t:<hash of key>` in its map for `tombstoneMs`
//     (default 1000 ms; 0 turns tombstones off) holding the announced fingerprint and the one of the
//     value B dropped. A set of that key on B during the window is then:
//       - accepted when its value is the announced one (the L2 write has landed: no extra misses);
//       - refused when its value is the one B dropped (a stale back-fill);
//       - otherwise refused when it is a fill (see above: its value may predate the write), and
//         accepted when it is a write: the host's own writes go through.
//     A refused set resolves true (as if stored and dropped at once) and is not published. Clears
//     leave a namespace tombstone that refuses fills of the namespace's keys the same way. The
//     window must cover the time from a writer's publish to its L2 write landing (milliseconds
//     unless the L2 is far away or overloaded): during it, readers on other hosts read that key
//     from L2 instead of their L1 unless the value they read is the announced one.
// (b) A Redis disconnect. Messages published while a host's subscriber was away are lost: when it
//     is ready again (the client resubscribes before it reports ready) the store clears its
//     namespace in its map — every key if it has none — and leaves a namespace tombstone, unless
//     `clearOnReconnect: false`. The host's own announcements made while its publisher was away
//     are kept (at most 10,000 keys; past that, one clear-everything message replaces them) and
//     published when it is back.
// (c) Redis down. The map keeps serving: reads never touch Redis, writes store and queue their
//     announcement. Connection errors are `error` events on the store (Keyv re-emits them); without
//     an `error` listener they are dropped after one process warning. No call rejects because of
//     Redis, and no promise is left to reject unhandled.
//
// Staleness bound: while connected, a host sees another host's write after the pub/sub latency
// (about a millisecond on a LAN; measured in __test__/keyv-redis.spec.mjs); when a message is lost
// without the subscriber noticing a disconnect, by the entry's TTL.
const { createHash, randomBytes } = require('node:crypto')
const { hostname } = require('node:os')

const DEFAULT_CHANNEL = 'lrukit:invalidate'
const DEFAULT_TOMBSTONE_MS = 1000
/** A set of a key this process missed less than max(this, tombstoneMs) ago is a fill. */
const MIN_FILL_WINDOW_MS = 1000
/** The most misses a process remembers (the oldest are forgotten first). */
const MAX_MISSES = 10_000
/** The most keys kept for publishing while the publisher is disconnected. */
const MAX_PENDING = 10_000
const PROTOCOL = 1

// Internal keys: Buffers, so they never equal one of Keyv's string keys.
const ID_KEY = Buffer.from('\0lrukit:map-id')
/** Present (for the tombstone window) while any tombstone may be live: one lookup per set otherwise. */
const ANY_TOMB_KEY = Buffer.from('\0lrukit:tomb')
const INTERNAL_PREFIX = Buffer.from('\0lrukit:')
const KEY_TOMB_PREFIX = Buffer.from('\0lrukit:t:')
const NS_TOMB_PREFIX = Buffer.from('\0lrukit:n:')
const ALL_TOMB_KEY = Buffer.from('\0lrukit:n*')

const sha1 = (data) => createHash('sha1').update(data).digest()
const keyTomb = (key) => Buffer.concat([KEY_TOMB_PREFIX, sha1(key).subarray(0, 12)])
const nsTomb = (namespace) => (namespace == null ? ALL_TOMB_KEY : Buffer.concat([NS_TOMB_PREFIX, sha1(namespace).subarray(0, 12)]))
const isInternalKey = (key) => Buffer.isBuffer(key) && key.subarray(0, INTERNAL_PREFIX.length).equals(INTERNAL_PREFIX)

const EXPIRES_TAIL = /^,"expires":-?\d+(\.\d+)?\}$/

/**
 * A 96-bit fingerprint of a stored value that ignores Keyv's `expires` (a back-fill re-computes it
 * from the remaining TTL, so the same value carries a slightly different one on every host).
 */
function fingerprint(value) {
  let data
  try {
    if (typeof value === 'string') {
      const tail = value.lastIndexOf(',"expires":')
      data = tail >= 0 && EXPIRES_TAIL.test(value.slice(tail)) ? `s${value.slice(0, tail)}` : `s${value}`
    } else if (value instanceof Uint8Array) {
      data = Buffer.concat([Buffer.from('b'), value])
    } else if (value !== null && typeof value === 'object') {
      // Keyv's envelope with its serializer off: the value alone; other objects whole.
      data = `o${JSON.stringify(Object.hasOwn(value, 'value') && Object.hasOwn(value, 'expires') ? value.value : value)}`
    } else {
      data = `${typeof value}:${String(value)}`
    }
  } catch {
    data = `x${Math.random()}` // not stored either (the map refuses what JSON refuses): unique
  }
  return sha1(data).toString('base64url', 0, 12)
}

/** Whether `raw` (a map value) is a Keyv envelope whose `expires` has passed. */
function isExpiredEnvelope(raw, now) {
  let expires
  if (typeof raw === 'string') {
    const tail = raw.lastIndexOf(',"expires":')
    if (tail < 0) return false
    const match = /^,"expires":(-?\d+(?:\.\d+)?)\}$/.exec(raw.slice(tail))
    if (!match) return false
    expires = Number(match[1])
  } else if (raw !== null && typeof raw === 'object' && typeof raw.expires === 'number') {
    expires = raw.expires
  } else {
    return false
  }
  return expires <= now
}

function invalidArgument(message) {
  const error = new TypeError(message)
  error.code = 'ERR_LRUKIT_INVALID_ARGUMENT'
  return error
}

/** Checks `invalidation` options; returns them with defaults. Throws ERR_LRUKIT_INVALID_ARGUMENT. */
function invalidationOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw invalidArgument('KeyvSharedMap: invalidation must be an object { url, channel?, tombstoneMs?, clearOnReconnect? }')
  }
  const { url, channel = DEFAULT_CHANNEL, tombstoneMs = DEFAULT_TOMBSTONE_MS, clearOnReconnect = true } = options
  if (typeof url !== 'string' || url.length === 0) throw invalidArgument('KeyvSharedMap: invalidation.url must be a Redis URL (redis://host:port)')
  if (typeof channel !== 'string' || channel.length === 0) throw invalidArgument('KeyvSharedMap: invalidation.channel must be a non-empty string')
  if (typeof tombstoneMs !== 'number' || !Number.isFinite(tombstoneMs) || tombstoneMs < 0 || tombstoneMs > 2 ** 31) {
    throw invalidArgument('KeyvSharedMap: invalidation.tombstoneMs must be a number of ms from 0 (no tombstones) to 2^31')
  }
  if (typeof clearOnReconnect !== 'boolean') throw invalidArgument('KeyvSharedMap: invalidation.clearOnReconnect must be a boolean')
  const known = new Set(['url', 'channel', 'tombstoneMs', 'clearOnReconnect'])
  const unknown = Object.keys(options).filter((name) => !known.has(name))
  if (unknown.length > 0) throw invalidArgument(`KeyvSharedMap: unknown invalidation option(s): ${unknown.join(', ')}`)
  return { url, channel, tombstoneMs: Math.ceil(tombstoneMs), clearOnReconnect }
}

/** `@redis/client`, or an Error with code ERR_LRUKIT_MISSING_PEER. */
function loadRedisClient() {
  try {
    return require('@redis/client')
  } catch (cause) {
    if (cause?.code === 'MODULE_NOT_FOUND' || cause?.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(String(cause?.message))) {
      const error = new Error(
        "KeyvSharedMap: invalidation needs the Redis client '@redis/client' (an optional peer dependency of lrukit, " +
          'installed with @keyv/redis or redis): npm install @redis/client',
        { cause },
      )
      error.code = 'ERR_LRUKIT_MISSING_PEER'
      throw error
    }
    throw cause
  }
}

/** The Redis side of one KeyvSharedMap: publisher, subscriber, tombstones, misses. */
class Invalidation {
  /**
   * @param store the KeyvSharedMap (events, namespace)
   * @param map its SharedMap handle
   * @param options checked by invalidationOptions
   */
  constructor(store, map, options) {
    const { createClient } = loadRedisClient()
    this.store = store
    this.map = map
    this.channel = options.channel
    this.tombstoneMs = options.tombstoneMs
    this.clearOnReconnect = options.clearOnReconnect
    this.fillWindowMs = Math.max(MIN_FILL_WINDOW_MS, options.tombstoneMs)
    this.closed = false
    /** key → Date.now() of this process's last miss of it. */
    this.misses = new Map()
    /** key → fingerprint (null: deleted), not yet published. */
    this.pending = new Map()
    /** Namespaces cleared (null: everything), not yet published. */
    this.pendingClears = []
    this.overflow = false
    this.flushScheduled = false
    this.subscriberReadyCount = 0
    this.stats = { published: 0, announced: 0, received: 0, ignored: 0, dropped: 0, refused: 0, reconnects: 0 }

    // The publisher fails fast while disconnected (its announcements wait in `pending` instead of
    // an unbounded offline queue); the subscriber queues its SUBSCRIBE until it is connected.
    this.publisher = createClient({ url: options.url, disableOfflineQueue: true })
    this.subscriber = createClient({ url: options.url })
    for (const client of [this.publisher, this.subscriber]) client.on('error', (error) => this.background(error))
    this.publisher.on('ready', () => this.flush())
    this.subscriber.on('ready', () => this.onSubscriberReady())

    const publisherReady = new Promise((resolve) => this.publisher.once('ready', () => resolve(true)))
    const subscribed = this.subscriber
      .subscribe(this.channel, (message) => this.onMessage(message))
      .then(
        () => true,
        (error) => {
          if (!this.closed) this.background(error)
          return false
        },
      )
    // Connection failures are 'error' events (the clients retry); the promises only settle.
    this.publisher.connect().catch((error) => this.closed || this.background(error))
    this.subscriber.connect().catch((error) => this.closed || this.background(error))
    let closedResolve
    this.closedSignal = new Promise((resolve) => (closedResolve = resolve))
    this.signalClosed = () => closedResolve(false)
    this.readyPromise = Promise.race([Promise.all([publisherReady, subscribed]).then(([a, b]) => a && b), this.closedSignal])
  }

  /** A background error (Redis, or the map while handling a message): an 'error' event. */
  background(error) {
    if (this.closed) return
    this.store._background(error)
  }

  // ---- the write side -------------------------------------------------------------------------

  /** Remembers that this process found `key` missing (the next set of it is a fill). */
  missed(key) {
    if (typeof key !== 'string') return
    this.misses.delete(key)
    this.misses.set(key, Date.now())
    if (this.misses.size > MAX_MISSES) this.misses.delete(this.misses.keys().next().value)
  }

  /** Forgets a miss (an explicit delete: the next set of the key is a write). */
  forget(key) {
    this.misses.delete(key)
  }

  /**
   * Decides what a set of `key` to `value` is (see the top of this file): `null` when refused (a
   * fill during a tombstone), `''` for a fill (stored, not published), else a write: the value's
   * fingerprint, to publish.
   */
  admit(key, value) {
    if (typeof key !== 'string') return ''
    const missedAt = this.misses.get(key)
    if (missedAt !== undefined) this.misses.delete(key)
    const fill = missedAt !== undefined && Date.now() - missedAt <= this.fillWindowMs
    const live = this.tombstoneMs > 0 && this.map.peek(ANY_TOMB_KEY) !== undefined
    if (!live) return fill ? '' : fingerprint(value)
    const fp = fingerprint(value)
    const tomb = this.map.peek(keyTomb(key))
    if (typeof tomb === 'string') {
      const [announced, dropped] = tomb.split(' ')
      if (fp === announced) return fill ? '' : fp
      if (fp === dropped || fill) return this.refuse()
      return fp
    }
    if (fill) return this.namespaceTombstoned(key) ? this.refuse() : ''
    return fp
  }

  /** Whether `raw` is a Keyv envelope past its `expires` (Keyv deletes such entries on a read). */
  expiredEnvelope(raw) {
    return isExpiredEnvelope(raw, Date.now())
  }

  refuse() {
    this.stats.refused++
    return null
  }

  /** Whether a clear of a namespace `key` belongs to (or of everything) left a live tombstone. */
  namespaceTombstoned(key) {
    if (this.map.peek(ALL_TOMB_KEY) !== undefined) return true
    // `ns:key` (Keyv 5) and `ns::key` (Keyv 6's bridge); a namespace may itself contain ':'.
    let at = key.indexOf(':')
    for (let n = 0; at > 0 && n < 8; n++, at = key.indexOf(':', at + 1)) {
      if (this.map.peek(nsTomb(key.slice(0, at))) !== undefined) return true
    }
    return false
  }

  /** Queues `key` (fingerprint `fp`, `null` for a delete) for the next message. */
  announce(key, fp) {
    if (typeof key !== 'string' || this.closed) return
    this.stats.announced++
    if (!this.overflow) {
      this.pending.delete(key)
      this.pending.set(key, fp)
      if (this.pending.size > MAX_PENDING) {
        this.overflow = true
        this.pending.clear()
      }
    }
    this.schedule()
  }

  /** Queues a clear of `namespace` (null: every key). */
  announceClear(namespace) {
    if (this.closed) return
    this.stats.announced++
    if (!this.overflow) this.pendingClears.push(namespace ?? null)
    this.schedule()
  }

  schedule() {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Publishes what is pending, if the publisher is ready; resolves when Redis took it (or failed). */
  flush() {
    if (this.closed || !this.publisher.isReady) return Promise.resolve()
    if (this.pending.size === 0 && this.pendingClears.length === 0 && !this.overflow) return Promise.resolve()
    const keys = [...this.pending]
    const clear = this.overflow ? [null] : this.pendingClears
    this.pending = new Map()
    this.pendingClears = []
    this.overflow = false
    let from
    try {
      from = this.mapId()
    } catch (error) {
      this.background(error)
      return Promise.resolve()
    }
    const message = { v: PROTOCOL, from }
    if (keys.length > 0) message.keys = keys
    if (clear.length > 0) message.clear = clear
    return this.publisher.publish(this.channel, JSON.stringify(message)).then(
      () => {
        this.stats.published++
      },
      (error) => {
        // Not taken (or not known to be): keep it for the next ready. A duplicate is harmless.
        if (this.closed) return
        for (const [key, fp] of keys) if (!this.pending.has(key)) this.pending.set(key, fp)
        this.pendingClears.unshift(...clear)
        this.background(error)
      },
    )
  }

  /** The id of this host's map (see the top of this file). */
  mapId() {
    const map = this.map
    try {
      const id = map.get(ID_KEY)
      if (typeof id === 'string') return id
      map.add(ID_KEY, randomBytes(12).toString('base64url'), { ttl: 0 })
      const stored = map.get(ID_KEY)
      if (typeof stored === 'string') return stored
    } catch (error) {
      if (error?.code === 'ECLOSED') throw error
      // EFULL and the like: the fallback below.
    }
    return `${hostname()}/${map.name}`
  }

  // ---- the read side --------------------------------------------------------------------------

  onMessage(raw) {
    if (this.closed) return
    let message
    try {
      message = JSON.parse(raw)
    } catch {
      return // not ours: the channel may carry other traffic
    }
    if (message === null || typeof message !== 'object' || message.v !== PROTOCOL) return
    this.stats.received++
    try {
      if (message.from === this.mapId()) {
        this.stats.ignored++
        return
      }
      const keys = []
      const namespaces = []
      for (const namespace of Array.isArray(message.clear) ? message.clear : []) {
        if (namespace !== null && typeof namespace !== 'string') continue
        this.dropNamespace(namespace)
        namespaces.push(namespace)
      }
      for (const entry of Array.isArray(message.keys) ? message.keys : []) {
        if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue
        const fp = typeof entry[1] === 'string' ? entry[1] : null
        this.dropKey(entry[0], fp)
        keys.push(entry[0])
      }
      this.store.emit('invalidate', { reason: 'message', keys, namespaces })
    } catch (error) {
      this.background(error)
    }
  }

  /** Drops `key` unless the map holds the announced value; leaves a tombstone. */
  dropKey(key, fp) {
    const current = this.map.peek(key)
    let dropped = null
    if (current !== undefined) {
      dropped = fingerprint(current)
      if (fp !== null && dropped === fp) return // already the announced value
      if (this.map.delete(key)) this.stats.dropped++
    }
    if (this.tombstoneMs === 0) return
    const tombKey = keyTomb(key)
    if (dropped === null) {
      // Another process of this host may have dropped it first: keep what it saw.
      const previous = this.map.peek(tombKey)
      if (typeof previous === 'string') {
        const [announced, seen] = previous.split(' ')
        if (announced === (fp ?? '-') && seen !== '-') dropped = seen
      }
    }
    this.tombstone(tombKey, `${fp ?? '-'} ${dropped ?? '-'}`)
  }

  /** Drops every key of `namespace` (null: every key but the internal ones); leaves a tombstone. */
  dropNamespace(namespace) {
    const prefix = namespace == null ? undefined : `${namespace}:`
    for (const key of this.map.keys()) {
      if (prefix === undefined ? isInternalKey(key) : typeof key !== 'string' || !key.startsWith(prefix)) continue
      if (this.map.delete(key)) this.stats.dropped++
    }
    if (this.tombstoneMs > 0) this.tombstone(nsTomb(namespace), '1')
  }

  tombstone(key, value) {
    const ttl = this.tombstoneMs
    try {
      this.map.set(ANY_TOMB_KEY, '1', { ttl })
      this.map.set(key, value, { ttl })
    } catch (error) {
      if (error?.code === 'ECLOSED') throw error
      this.background(error) // a full map: the drop happened, the fill guard did not
    }
  }

  onSubscriberReady() {
    this.subscriberReadyCount++
    if (this.subscriberReadyCount === 1 || this.closed) return
    // A reconnect: messages published while we were away are lost (see (b) at the top).
    this.stats.reconnects++
    if (!this.clearOnReconnect) return
    try {
      const namespace = this.store.namespace || null
      this.dropNamespace(namespace)
      this.store.emit('invalidate', { reason: 'reconnect', keys: [], namespaces: [namespace] })
    } catch (error) {
      this.background(error)
    }
  }

  /** Whether both connections are up. */
  get connected() {
    return this.publisher.isReady && this.subscriber.isReady
  }

  /** Publishes what is pending (if connected, waiting at most 1 s), then closes both connections. */
  close() {
    this.closing ??= this.closeOnce()
    return this.closing
  }

  async closeOnce() {
    try {
      await Promise.race([this.flush(), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    } finally {
      this.closed = true
      this.signalClosed()
      for (const client of [this.subscriber, this.publisher]) {
        try {
          client.destroy()
        } catch {
          // already closed (a reconnect strategy that gave up)
        }
      }
    }
  }
}

module.exports = { Invalidation, invalidationOptions, isExpiredEnvelope, fingerprint, isInternalKey, DEFAULT_CHANNEL, DEFAULT_TOMBSTONE_MS }
