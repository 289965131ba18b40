// An ES module TypeScript consumer (module node16: named imports of both entry points).
import { SharedMap, isLrukitError } from 'lrukit'
import { KeyvSharedMap } from 'lrukit/keyv'

export function open(): SharedMap<string> {
  try {
    return SharedMap.open<string>('esm-types')
  } catch (e) {
    if (isLrukitError(e, 'ENOENT')) return SharedMap.create<string>('esm-types', { capacity: 10 })
    throw e
  }
}
export const store = new KeyvSharedMap('esm-types', { capacity: 10 })
// @ts-expect-error the map holds strings
open().set('k', 1)
