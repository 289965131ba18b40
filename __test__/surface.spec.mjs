// The package's public surface is exactly the three classes and their types: what the generated
// loader carries beyond them (benchmark probes, loader markers, napi-rs's aliases of the Rust
// struct names) stays off `lrukit`, and every public type the generated declarations gain is
// re-exported by index.d.ts.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import * as esm from 'lrukit'

import { test } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const root = fileURLToPath(new URL('..', import.meta.url))
const PUBLIC = ['FlowTable', 'LruCache', 'SharedMap']
/** Declarations of native.d.ts that are not the package's API. */
const INTERNAL = new Set(['noop', 'echo', '__napiBindingTarget'])
const isInternal = (name) => INTERNAL.has(name) || /^Js[A-Z]/.test(name)

test('lrukit exports the three classes and nothing else (CommonJS and ESM)', (t) => {
  t.deepEqual(Object.keys(require('lrukit')).sort(), PUBLIC)
  t.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), PUBLIC)
  for (const name of PUBLIC) t.is(esm[name], require('lrukit')[name])
  t.is(typeof require('../native.js').noop, 'function', 'the probes stay reachable for the benchmarks')
})

test('index.d.ts re-exports every public declaration of the generated native.d.ts', (t) => {
  const native = readFileSync(`${root}native.d.ts`, 'utf8')
  const declared = new Set(
    [...native.matchAll(/^export (?:declare )?(?:class|interface|type|function|const|enum) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]),
  )
  t.true(declared.size > 10)
  const index = readFileSync(`${root}index.d.ts`, 'utf8')
  const exported = new Set([...index.matchAll(/^\s+([A-Za-z_$][\w$]*),?$/gm)].map((m) => m[1]))
  for (const m of index.matchAll(/^export \{([^}]*)\}/gm)) for (const n of m[1].split(',')) exported.add(n.trim())
  const missing = [...declared].filter((n) => !isInternal(n) && !exported.has(n))
  t.deepEqual(missing, [], 'public declarations of native.d.ts that index.d.ts does not re-export')
  const leaked = [...exported].filter((n) => isInternal(n) || !declared.has(n))
  t.deepEqual(leaked, [], 'index.d.ts exports names that are internal or not declared')
})
