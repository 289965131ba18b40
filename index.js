'use strict'
// lrukit's public surface: the three classes and `isLrukitError`. `native.js` is the loader napi-rs generates for this
// platform's binary; it also carries what is not public (the benchmark probes `noop` and `echo`,
// the native steps of `fetch`, the loader's own markers), so only the classes are exported from
// here.
//
// `fetch` is the one method written in JavaScript: it calls the user's loader and waits on
// promises, which native code cannot do for it. The protocol (claims, deadlines, freshness) is the
// crate's (`crates/shm-map/src/fetch.rs`); this file only sequences its steps:
//   - callers in this process share one promise per key (in-process coalescing);
//   - a miss whose claim this process wins calls the loader, then stores the value (or gives the
//     claim back when the loader throws or returns `undefined`);
//   - a miss another process is loading is polled for every POLL_MS by one timer per process:
//     one read of the map's fetch epoch, and when it moved (or every FULL_CHECK_POLLS polls) one
//     native call that checks all the handle's waiting keys; no native thread, no blocked event
//     loop;
//   - a stale value is returned at once; the caller that wins the claim refreshes it in the
//     background.
const native = require('./native.js')

const { FlowTable, LruCache, SharedMap } = native

exports.LruCache = LruCache
exports.SharedMap = SharedMap
exports.FlowTable = FlowTable
exports.isLrukitError = isLrukitError

// README "Errors" is the one list of codes (copied here by scripts/error-codes.mjs).
// <error-codes>
const ERROR_CODES = new Set([
  'ERR_LRUKIT_INVALID_ARGUMENT',
  'ERR_LRUKIT_INVALID_CAPACITY',
  'ERR_LRUKIT_INVALID_TTL',
  'ERR_LRUKIT_INVALID_TIMESTAMP',
  'ERR_LRUKIT_INVALID_TIMEOUT',
  'ERR_LRUKIT_INVALID_ENGINE',
  'ERR_LRUKIT_INVALID_KEY',
  'ERR_LRUKIT_INVALID_VALUE',
  'ERR_LRUKIT_FULL',
  'ERR_LRUKIT_REENTRANT',
  'ERR_LRUKIT_OUT_OF_MEMORY',
  'ERR_LRUKIT_MISSING_PEER',
  'ERR_LRUKIT_USAGE',
  'ERR_LRUKIT_UNSUPPORTED',
  'ERR_LRUKIT_INTERNAL',
  'EEXIST',
  'ENOENT',
  'EPERM',
  'EUNINIT',
  'EINCOMPAT',
  'EINVAL',
  'ENAME',
  'EFULL',
  'EKEYTOOLONG',
  'EVALUETOOLONG',
  'ETYPE',
  'ERANGE',
  'ECORRUPT',
  'ETIMEDOUT',
  'EIO',
  'EBADDUMP',
  'ECLOSED',
])
// </error-codes>

/** Whether `error` is an error lrukit threw (with `code`: with that code). */
function isLrukitError(error, code) {
  return error instanceof Error && typeof error.code === 'string' && ERROR_CODES.has(error.code) && (code === undefined || error.code === code)
}

// `using map = SharedMap.open(name)` / `using table = new FlowTable(options)`: disposing closes.
if (typeof Symbol.dispose === 'symbol') {
  for (const C of [SharedMap, FlowTable]) {
    Object.defineProperty(C.prototype, Symbol.dispose, {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function dispose() {
        this.close()
      },
    })
  }
}

/** What a native fetch step found (`crates/lrukit-napi/src/shared_map_fetch.rs`). */
const FRESH = 0
const STALE = 1
const LOAD = 2
/** How often (ms) waiting fetches look for the value another process is loading. */
const POLL_MS = 1
/** Polls between checks of the waiting keys when the map's fetch epoch has not moved. */
const FULL_CHECK_POLLS = 10
/** How long a loader runs before others stop waiting for it: the crate's default, in ms. */
const LOCK_TIMEOUT_MS = 10_000

function invalidLoader(what) {
  const error = new TypeError(`${what}: loader must be a function`)
  error.code = 'ERR_LRUKIT_INVALID_ARGUMENT'
  return error
}

/** A string naming `key` for in-process coalescing (keys equal as lrukit compares them). */
function keyId(key) {
  switch (typeof key) {
    case 'string':
      return `s${key}`
    case 'number':
      return `n${key === 0 ? 0 : key}`
    case 'bigint':
      return `b${key}`
    default:
      // A hostile object (a revoked Proxy, a detached buffer) throws here: no coalescing for it,
      // and the native call reports what is wrong with the key.
      try {
        if (key instanceof Uint8Array) return `u${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`
      } catch {
        // fall through
      }
      return undefined
  }
}

/** The promises of the loads and waits in flight, per handle: key id → promise. */
const inflight = new WeakMap()
function inflightOf(handle) {
  let m = inflight.get(handle)
  if (!m) inflight.set(handle, (m = new Map()))
  return m
}
function track(handle, id, promise) {
  if (id === undefined) return promise
  const m = inflightOf(handle)
  m.set(id, promise)
  const forget = () => {
    if (m.get(id) === promise) m.delete(id)
  }
  promise.then(forget, forget)
  return promise
}

// ---- SharedMap ------------------------------------------------------------------------------

/** Runs the loader for a claim this process holds, then stores its value (or gives the claim back). */
async function sharedLoad(map, key, loader, options, claim) {
  let value
  try {
    value = await loader(key)
  } catch (error) {
    releaseQuietly(map, claim)
    throw error
  }
  if (value === undefined) {
    releaseQuietly(map, claim)
    return undefined
  }
  try {
    native.sharedMapFetchStore(map, key, claim, value, options)
  } catch (error) {
    // A value the map refuses (its type, its size, a full map): nothing is stored, the claim is
    // given back, and the caller gets the error.
    releaseQuietly(map, claim)
    throw error
  }
  return value
}

function releaseQuietly(map, claim) {
  try {
    native.sharedMapFetchRelease(map, claim)
  } catch {
    // A closed handle: the claim ends at its deadline.
  }
}

/** Hands a background refresh's error to `onRefreshError`; nothing else sees it. */
function refreshFailed(options, error) {
  try {
    if (typeof options?.onRefreshError === 'function') options.onRefreshError(error)
  } catch {
    // The callback's own error has nowhere to go but an unhandled rejection: dropped.
  }
}

function refreshInBackground(map, key, loader, options, claim) {
  sharedLoad(map, key, loader, options, claim).catch((error) => refreshFailed(options, error))
}

/** Fetches waiting for another process's load, per handle, polled together by one timer. */
const waiting = new Map()
let pollTimer = null

function addWaiter(w) {
  const list = waiting.get(w.map)
  if (list) list.push(w)
  else waiting.set(w.map, [w])
}

/** One step for a waiter whose key is no longer pending; true if it must keep waiting. */
function stepWaiter(w) {
  let step
  try {
    step = native.sharedMapFetchStep(w.map, w.key, w.options, false)
  } catch (error) {
    w.reject(error)
    return false
  }
  if (step[0] === FRESH || step[0] === STALE) {
    if (step[0] === STALE && step[2] !== undefined) refreshInBackground(w.map, w.key, w.loader, w.options, step[2])
    w.resolve(step[1])
    return false
  }
  if (step[0] === LOAD) {
    // The owner gave up (its loader failed or returned nothing, it died, or it overran its
    // lockTimeout): load here.
    sharedLoad(w.map, w.key, w.loader, w.options, step[2]).then(w.resolve, w.reject)
    return false
  }
  return true
}

/** Per handle: the fetch epoch last seen, and the polls since its keys were last checked. */
const epochs = new WeakMap()

function poll() {
  pollTimer = null
  // Detached first: a loader started below may add waiters while this runs.
  const lists = [...waiting]
  waiting.clear()
  for (const [map, list] of lists) {
    let pending
    try {
      // One read says whether any load of this map ended (stored or gave up) since the last poll;
      // the keys are checked then, and every FULL_CHECK_POLLS polls anyway (an owner that died or
      // overran its lockTimeout moves no epoch).
      const epoch = native.sharedMapFetchEpoch(map)
      const seen = epochs.get(map)
      if (seen !== undefined && seen.epoch === epoch && ++seen.polls < FULL_CHECK_POLLS) {
        for (const w of list) addWaiter(w)
        continue
      }
      epochs.set(map, { epoch, polls: 0 })
      // One native call checks every waiting key of the handle (two lock-free reads each).
      pending = native.sharedMapFetchPending(
        map,
        list.map((w) => w.key),
      )
    } catch (error) {
      for (const w of list) w.reject(error)
      continue
    }
    for (let i = 0; i < list.length; i++) if (pending[i] === 1 || stepWaiter(list[i])) addWaiter(list[i])
  }
  if (waiting.size > 0) pollTimer = setTimeout(poll, POLL_MS)
}

function waitForLoad(map, key, loader, options) {
  return new Promise((resolve, reject) => {
    addWaiter({ map, key, loader, options, resolve, reject })
    if (pollTimer === null) pollTimer = setTimeout(poll, POLL_MS)
  })
}

function sharedFetch(map, key, loader, options) {
  if (typeof loader !== 'function') throw invalidLoader('SharedMap.fetch(key, loader, options)')
  const id = keyId(key)
  const pending = id === undefined ? undefined : inflight.get(map)?.get(id)
  if (pending) return pending
  const step = native.sharedMapFetchStep(map, key, options, true)
  switch (step[0]) {
    case FRESH:
      return step[1]
    case STALE:
      if (step[2] !== undefined) refreshInBackground(map, key, loader, options, step[2])
      return step[1]
    case LOAD:
      return track(map, id, sharedLoad(map, key, loader, options, step[2]))
    default:
      return track(map, id, waitForLoad(map, key, loader, options))
  }
}

Object.defineProperty(SharedMap.prototype, 'fetch', {
  configurable: true,
  writable: true,
  enumerable: false,
  // Not `async`: the promise of a load or wait in flight is returned as is (one promise per
  // key, not one more per caller), and a synchronous error becomes a rejection.
  value: function fetch(key, loader, options) {
    try {
      return Promise.resolve(sharedFetch(this, key, loader, options))
    } catch (error) {
      return Promise.reject(error)
    }
  },
})

// ---- LruCache -------------------------------------------------------------------------------

function lruOptions(options) {
  if (options === undefined || options === null) return { stale: 0, lockTimeout: LOCK_TIMEOUT_MS, ttl: undefined }
  if (typeof options !== 'object') {
    const error = new TypeError('LruCache.fetch(key, loader, options): options must be an object')
    error.code = 'ERR_LRUKIT_INVALID_ARGUMENT'
    throw error
  }
  const { ttl, staleWhileRevalidate = 0, lockTimeout = LOCK_TIMEOUT_MS } = options
  for (const [name, v, code] of [
    ...(ttl === undefined ? [] : [['ttl', ttl, 'ERR_LRUKIT_INVALID_TTL']]),
    ['staleWhileRevalidate', staleWhileRevalidate, 'ERR_LRUKIT_INVALID_TTL'],
    ['lockTimeout', lockTimeout, 'ERR_LRUKIT_INVALID_TIMEOUT'],
  ]) {
    if (typeof v !== 'number') {
      const error = new TypeError(`${name} must be a number of ms`)
      error.code = code
      throw error
    }
    if (!(v >= 0) || (name === 'lockTimeout' && !(v >= 1 && v <= 2_147_483_647))) {
      const error = new RangeError(`${name} must be ${name === 'lockTimeout' ? 'from 1 to 2147483647' : 'a non-negative number of'} ms, got ${v}`)
      error.code = code
      throw error
    }
  }
  return { stale: staleWhileRevalidate, lockTimeout, ttl }
}

/** The loads in flight per cache: key id → { promise, startedAt }. */
const lruLoads = new WeakMap()

function lruLoad(cache, key, id, loader, o) {
  let loads = lruLoads.get(cache)
  if (!loads) lruLoads.set(cache, (loads = new Map()))
  const load = { startedAt: cache.now(), promise: undefined }
  load.promise = (async () => {
    try {
      const value = await loader(key)
      if (value !== undefined) {
        const setOptions = o.ttl === undefined ? undefined : { ttl: o.ttl === 0 || o.ttl === Infinity ? 0 : o.ttl + o.stale }
        cache.set(key, value, setOptions)
      }
      return value
    } finally {
      if (loads.get(id) === load) loads.delete(id)
    }
  })()
  if (id !== undefined) loads.set(id, load)
  return load
}

function lruFetch(cache, key, loader, options) {
  if (typeof loader !== 'function') throw invalidLoader('LruCache.fetch(key, loader, options)')
  const o = lruOptions(options)
  const id = keyId(key)
  const inFlight = id === undefined ? undefined : lruLoads.get(cache)?.get(id)
  const running = inFlight !== undefined && cache.now() - inFlight.startedAt < o.lockTimeout ? inFlight : undefined
  if (cache.has(key)) {
    const remaining = cache.getRemainingTTL(key)
    const value = cache.get(key)
    if (remaining > o.stale) return value
    // Stale: returned at once; one refresh in flight per key.
    if (running === undefined) lruLoad(cache, key, id, loader, o).promise.catch((error) => refreshFailed(options, error))
    return value
  }
  if (running !== undefined) return running.promise
  return lruLoad(cache, key, id, loader, o).promise
}

Object.defineProperty(LruCache.prototype, 'fetch', {
  configurable: true,
  writable: true,
  enumerable: false,
  value: async function fetch(key, loader, options) {
    return lruFetch(this, key, loader, options)
  },
})
