// The package's public surface is exactly the three classes, `isLrukitError` and their types: what the generated
// loader carries beyond them (benchmark probes, loader markers, napi-rs's aliases of the Rust
// struct names) stays off `lrukit`, and every public type the generated declarations gain is
// re-exported by index.d.ts.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

import * as esm from 'lrukit'
import { SharedMap as SharedMapForSurface } from 'lrukit'

import { test } from './test.framework.mjs'

const require = createRequire(import.meta.url)
const root = fileURLToPath(new URL('..', import.meta.url))
const CLASSES = ['FlowTable', 'LruCache', 'SharedMap']
const PUBLIC = [...CLASSES, 'isLrukitError']
/** Declarations of native.d.ts that are not the package's API. */
const INTERNAL = new Set(['noop', 'echo', '__napiBindingTarget'])
const isInternal = (name) => INTERNAL.has(name) || /^Js[A-Z]/.test(name)

test('lrukit exports the three classes and isLrukitError, nothing else (CommonJS and ESM)', (t) => {
  t.deepEqual(Object.keys(require('lrukit')).sort(), PUBLIC)
  // Node 23+ also gives an imported CommonJS module a 'module.exports' export
  t.deepEqual(Object.keys(esm).filter((k) => k !== 'default' && k !== 'module.exports').sort(), PUBLIC)
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

/** Members TypeScript sees on an instance of `cls`: the class and the interface merged with it. */
async function declaredMembers(cls) {
  const ts = (await import('typescript')).default
  const file = `${root}index.d.ts`
  const program = ts.createProgram([file], { strict: true, noEmit: true })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  const moduleSymbol = checker.getSymbolAtLocation(source)
  const symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.name === cls)
  const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
  const instance = checker.getDeclaredTypeOfSymbol(resolved)
  const statics = checker.getTypeOfSymbolAtLocation(resolved, source)
  const names = (type) => checker.getPropertiesOfType(type).map((p) => p.name).filter((n) => !n.startsWith('__@'))
  return { instance: names(instance).sort(), statics: names(statics).filter((n) => n !== 'prototype').sort() }
}

/** Members an instance of `C` has at runtime: own (bound hot methods) and inherited, and the statics. */
function runtimeMembers(C, instance) {
  const names = new Set(Object.getOwnPropertyNames(instance))
  for (let p = Object.getPrototypeOf(instance); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) if (n !== 'constructor') names.add(n)
  }
  const statics = Object.getOwnPropertyNames(C).filter((n) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(n))
  return { instance: [...names].sort(), statics: statics.sort() }
}

test('every method, getter and static each class has at runtime is declared in index.d.ts, and nothing more', async (t) => {
  const name = `surf${process.pid.toString(36)}`
  SharedMapForSurface.unlink(name)
  const made = {
    LruCache: new (require('lrukit').LruCache)({ capacity: 4 }),
    SharedMap: SharedMapForSurface.create(name, { capacity: 4 }),
    FlowTable: new (require('lrukit').FlowTable)({ timeout: 1000 }),
  }
  try {
    for (const cls of CLASSES) {
      const declared = await declaredMembers(cls)
      const actual = runtimeMembers(require('lrukit')[cls], made[cls])
      t.deepEqual(actual.instance, declared.instance, `${cls}: instance members at runtime vs declared`)
      t.deepEqual(actual.statics, declared.statics, `${cls}: static members at runtime vs declared`)
    }
  } finally {
    made.SharedMap.close()
    SharedMapForSurface.unlink(name)
    made.FlowTable.close()
  }
})

test('isLrukitError narrows on lrukit codes only; handles are disposable', (t) => {
  const { LruCache, SharedMap, FlowTable, isLrukitError } = require('lrukit')
  let thrown
  try {
    new LruCache({ capacity: -1 })
  } catch (e) {
    thrown = e
  }
  t.true(isLrukitError(thrown))
  t.true(isLrukitError(thrown, 'ERR_LRUKIT_INVALID_CAPACITY'))
  t.false(isLrukitError(thrown, 'EFULL'))
  t.false(isLrukitError(Object.assign(new Error('x'), { code: 'ENOTACODE' })))
  t.false(isLrukitError({ code: 'EFULL', message: 'not an Error' }))
  const name = `disp${process.pid.toString(36)}`
  SharedMap.unlink(name)
  const map = SharedMap.create(name, { capacity: 4 })
  const table = new FlowTable({ timeout: 1000 })
  t.is(typeof Symbol.dispose, 'symbol', 'this runtime has Symbol.dispose')
  map[Symbol.dispose]()
  table[Symbol.dispose]()
  t.true(map.closed)
  t.true(table.closed)
  SharedMap.unlink(name)
})
