// ESM entry of `lrukit/keyv`: the same classes as the CommonJS entry (one copy of each).
import keyv from './index.js'

export const { KeyvSharedMap, KeyvLruCache } = keyv
