// Type-checked inside the installed project (install.mjs): the package's own declarations, found
// through its `exports`, with the module resolution of a Node ESM project.
import { FlowTable, LruCache, SharedMap, type LruEntry, type StoredValue } from 'lrukit'
import { KeyvLruCache, KeyvSharedMap } from 'lrukit/keyv'

const cache = new LruCache({ capacity: 10 })
cache.set('a', 1)
const entry: LruEntry | undefined = cache.popLru()
const map: SharedMap = SharedMap.openOrCreate('types', { capacity: 10 })
const value: StoredValue | undefined = map.get('a')
const flows = new FlowTable({ timeout: 1000 })
const store = new KeyvSharedMap(map)
const local = new KeyvLruCache({ capacity: 5 })
// @ts-expect-error capacity is required
new LruCache({})
export { entry, flows, local, store, value }
