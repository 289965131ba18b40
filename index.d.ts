// lrukit's public types: the three classes and the types of their options and results, from the
// declarations napi-rs generates (`native.d.ts`, whose header is `types/header.d.ts`). What that
// file declares beyond these (benchmark probes, loader markers) is not part of the package's API.
// `__test__/surface.spec.mjs` checks that every public declaration there is re-exported here.
export { FlowTable, LruCache, SharedMap } from './native'
export type {
  FlowExpired,
  FlowTableOptions,
  Key,
  LruCacheOptions,
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
  SharedMapWriteOptions,
  SharedValue,
  StoredValue,
} from './native'
