// lrukit's public types: the three classes and the types of their options and results, from the
// declarations napi-rs generates (`native.d.ts`, whose header is `types/header.d.ts`). What that
// file declares beyond these (benchmark probes, loader markers) is not part of the package's API.
// `__test__/surface.spec.mjs` checks that every public declaration there is re-exported here.
export { FlowTable, LruCache, SharedMap } from './native'
export type {
  FetchLoader,
  JsonOption,
  FetchOptions,
  FlowExpired,
  FlowTableOptions,
  Key,
  LruCacheOptions,
  LruDumpEntry,
  LruEntry,
  LruKey,
  LruSetOptions,
  SharedMapEvictions,
  SharedMapIncrOptions,
  SharedMapOpenOptions,
  SharedMapOptions,
  SharedMapReport,
  SharedMapSegmentInfo,
  SharedMapStats,
  SharedMapOpenArgs,
  SharedMapWriteOptions,
  SharedPrimitive,
  SharedValue,
  StoredValue,
} from './native'

/**
 * Every `code` an lrukit error carries: README "Errors" lists what each means and which classes
 * throw it (this union is copied from that table by scripts/error-codes.mjs).
 */
// <error-codes>
export type LrukitErrorCode =
  | 'ERR_LRUKIT_INVALID_ARGUMENT'
  | 'ERR_LRUKIT_INVALID_CAPACITY'
  | 'ERR_LRUKIT_INVALID_TTL'
  | 'ERR_LRUKIT_INVALID_TIMESTAMP'
  | 'ERR_LRUKIT_INVALID_TIMEOUT'
  | 'ERR_LRUKIT_INVALID_ENGINE'
  | 'ERR_LRUKIT_INVALID_KEY'
  | 'ERR_LRUKIT_INVALID_VALUE'
  | 'ERR_LRUKIT_FULL'
  | 'ERR_LRUKIT_REENTRANT'
  | 'ERR_LRUKIT_OUT_OF_MEMORY'
  | 'ERR_LRUKIT_MISSING_PEER'
  | 'ERR_LRUKIT_USAGE'
  | 'ERR_LRUKIT_UNSUPPORTED'
  | 'ERR_LRUKIT_INTERNAL'
  | 'EEXIST'
  | 'ENOENT'
  | 'EPERM'
  | 'EUNINIT'
  | 'EINCOMPAT'
  | 'EINVAL'
  | 'ENAME'
  | 'EFULL'
  | 'EKEYTOOLONG'
  | 'EVALUETOOLONG'
  | 'ETYPE'
  | 'ERANGE'
  | 'ECORRUPT'
  | 'ETIMEDOUT'
  | 'EIO'
  | 'EBADDUMP'
  | 'ECLOSED'
// </error-codes>

/** An error lrukit threw: an `Error`, `TypeError` or `RangeError` with one of lrukit's codes. */
export interface LrukitError<C extends LrukitErrorCode = LrukitErrorCode> extends Error {
  code: C
}

/**
 * Whether `error` is an error lrukit threw (with `code` given: with that code), narrowing it to
 * `LrukitError`: `if (isLrukitError(e, 'EFULL')) …`.
 */
export declare function isLrukitError<C extends LrukitErrorCode = LrukitErrorCode>(error: unknown, code?: C): error is LrukitError<C>

