'use strict'
// lrukit's public surface: the three classes. `native.js` is the loader napi-rs generates for this
// platform's binary; it also carries what is not public (the benchmark probes `noop` and `echo`,
// the loader's own markers), so only the classes are exported from here.
const native = require('./native.js')

exports.LruCache = native.LruCache
exports.SharedMap = native.SharedMap
exports.FlowTable = native.FlowTable
