// The CommonJS entry points of the installed package (see smoke.mjs for the ESM ones).
'use strict'
const assert = require('node:assert/strict')

const lrukit = require('lrukit')
const keyv = require('lrukit/keyv')

assert.deepEqual(Object.keys(lrukit).sort(), ['FlowTable', 'LruCache', 'SharedMap', 'isLrukitError'])
assert.equal(typeof keyv.KeyvSharedMap, 'function')
assert.equal(typeof keyv.KeyvLruCache, 'function')
const cache = new lrukit.LruCache({ capacity: 4 })
cache.set(1, 'one')
assert.equal(cache.get(1), 'one')
assert.equal(require('lrukit/package.json').name, 'lrukit')
console.log(JSON.stringify({ ok: true, module: 'cjs', runtime: process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}` }))
