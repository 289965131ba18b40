// `npm run build` / `npm run build:debug`: `napi build` of the addon for this machine (or the
// `--target` given, as the release workflow does), then two finishing touches to the generated
// `native.d.ts` that napi-rs cannot express:
//   - the classes and the option/result interfaces that carry keys and values get their type
//     parameters (`LruCache<K, V>`, `SharedMap<V>`, `FlowTable<K, V>`, ...), so the declarations
//     napi-rs writes from the Rust doc comments stay the single source of the API's docs;
//   - what the loader declares beyond the public surface (the `Js*` aliases of the Rust struct
//     names, `__napiBindingTarget`) is removed.
// Every edit must match exactly once, so a change in napi-rs's output fails the build loudly.
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const KV = '<K extends Key = Key, V extends StoredValue = StoredValue>'
const GENERICS = [
  ['export declare class LruCache {', 'export declare class LruCache<K extends Key = Key, V = unknown> {'],
  ['export declare class SharedMap {', 'export declare class SharedMap<V extends StoredValue = StoredValue> {'],
  ['export declare class FlowTable {', `export declare class FlowTable${KV} {`],
  ['export interface FlowTableOptions {', `export interface FlowTableOptions${KV} {`],
  ['export interface FlowExpired {', `export interface FlowExpired${KV} {`],
]
const REMOVE = [/^export type Js\w+ = \w+\n/gm, /^\/\*\*(?:(?!\*\/)[\s\S])*?\*\/\nexport declare const __napiBindingTarget: [^\n]*\n\n?/m]

export function finishDts(text) {
  let out = text
  for (const [from, to] of GENERICS) {
    const n = out.split(from).length - 1
    if (n !== 1) throw new Error(`native.d.ts: expected "${from}" once, found it ${n} times`)
    out = out.replace(from, to)
  }
  for (const re of REMOVE) {
    if (!re.test(out)) throw new Error(`native.d.ts: nothing matches ${re}`)
    re.lastIndex = 0
    out = out.replace(re, '')
  }
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const debug = args.includes('--debug')
  const napi = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'napi.cmd' : 'napi')
  const build = [
    'build',
    '--platform',
    ...(debug ? [] : ['--release']),
    '--manifest-path',
    'crates/lrukit-napi/Cargo.toml',
    '-o',
    '.',
    '--js',
    'native.js',
    '--dts',
    'native.d.ts',
    '--no-const-enum',
    ...args.filter((a) => a !== '--debug'),
  ]
  const r = spawnSync(napi, build, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  const dts = join(root, 'native.d.ts')
  writeFileSync(dts, finishDts(readFileSync(dts, 'utf8')))
}
