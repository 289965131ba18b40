// A CommonJS TypeScript consumer (module node16: `import x = require()` of both entry points).
import lrukit = require('lrukit')
import keyv = require('lrukit/keyv')

const cache = new lrukit.LruCache<string, number>({ capacity: 10 })
cache.set('a', 1)
const one: number | undefined = cache.get('a')
const store = new keyv.KeyvLruCache({ capacity: 10 })
// @ts-expect-error the value type is number
cache.set('b', 'two')
export = { one, store }
