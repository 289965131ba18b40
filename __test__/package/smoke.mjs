// Run inside a project that installed the packed tarballs (see install.mjs), under Node or Bun:
// every class and lrukit/keyv through the package's ESM entry points, a SharedMap shared with a
// child process, and the binary loaded from the platform package. Prints one JSON line.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

import Keyv from 'keyv'
import { FlowTable, LruCache, SharedMap } from 'lrukit'
import { KeyvLruCache, KeyvSharedMap } from 'lrukit/keyv'

const require = createRequire(import.meta.url)

// The binary comes from the platform package, not from a build: lrukit itself ships none.
const lrukitDir = dirname(require.resolve('lrukit/package.json'))
assert.deepEqual(readdirSync(lrukitDir).filter((f) => f.endsWith('.node')), [])
const platform = process.argv[2]
const platformDir = dirname(createRequire(`${lrukitDir}/`).resolve(`${platform}/package.json`))
assert.ok(readdirSync(platformDir).some((f) => f.endsWith('.node')), `${platform} holds the addon`)

// LruCache: LRU order, popLru with its insert timestamp, a manual clock.
const lru = new LruCache({ capacity: 2, clock: 'manual' })
const t0 = lru.now()
lru.set('a', { n: 1 }).set('b', 2)
lru.advanceTime(5)
assert.deepEqual(lru.get('a'), { n: 1 })
lru.set('c', 'three')
assert.equal(lru.has('b'), false)
const oldest = lru.popLru()
assert.equal(oldest.key, 'a')
assert.equal(oldest.timestamp, t0)

// SharedMap: a named segment that a child process reads and writes.
const name = `lk-smoke-${process.pid.toString(36)}`
SharedMap.unlink(name)
const map = SharedMap.create(name, { capacity: 1000, json: true })
try {
  map.set('greeting', 'hello')
  map.set('obj', { deep: [1, 2] })
  assert.equal(map.incr('n', 5), 5)
  const child = spawnSync(
    process.execPath,
    ['-e', `const { SharedMap } = require('lrukit'); const m = SharedMap.open(${JSON.stringify(name)}); m.set('from-child', m.get('greeting') + '!'); m.incr('n'); m.close()`],
    { encoding: 'utf8' },
  )
  assert.equal(child.status, 0, child.stderr)
  assert.equal(map.get('from-child'), 'hello!')
  assert.equal(map.get('n'), 6)
  assert.deepEqual(map.get('obj'), { deep: [1, 2] })
  assert.equal(map.verify().ok, true)
} finally {
  map.close()
  SharedMap.unlink(name)
}
assert.equal(existsSync(`/dev/shm/lk_${name}`), false)

// FlowTable: idle expiry on a manual clock, no sweep.
const flows = new FlowTable({ timeout: 100, clock: 'manual' })
flows.set('10.0.0.1:443', 'open')
flows.advanceTime(50)
assert.equal(flows.getAndTouch('10.0.0.1:443'), 'open')
flows.advanceTime(120)
assert.deepEqual(flows.expire().map((e) => e.key), ['10.0.0.1:443'])
flows.close()

// The `lrukit` command npm linked from the package's "bin": --version, and stats of a live map.
const cli = join(lrukitDir, 'bin', 'lrukit.mjs')
if (process.platform !== 'win32') assert.ok(existsSync(join(lrukitDir, '..', '.bin', 'lrukit')), 'npm linked node_modules/.bin/lrukit')
const cliVersion = spawnSync(process.execPath, [cli, '--version'], { encoding: 'utf8' })
assert.equal(cliVersion.stdout, `lrukit ${require('lrukit/package.json').version}\n`, cliVersion.stderr)
const cliName = `lk-smoke-cli-${process.pid.toString(36)}`
SharedMap.unlink(cliName)
const cliMap = SharedMap.create(cliName, { capacity: 100 })
try {
  cliMap.set('k', 'v')
  const r = spawnSync(process.execPath, [cli, 'stats', cliName, '--json'], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).stats.size, 1)
} finally {
  cliMap.close()
  SharedMap.unlink(cliName)
}

// lrukit/keyv: both adapters behind Keyv.
const keyvName = `lk-smoke-kv-${process.pid.toString(36)}`
const shared = new KeyvSharedMap(keyvName, { capacity: 1000 })
try {
  const kv = new Keyv({ store: shared, namespace: 'smoke' })
  await kv.set('k', { v: 1 }, 60_000)
  assert.deepEqual(await kv.get('k'), { v: 1 })
  const local = new Keyv({ store: new KeyvLruCache({ capacity: 10 }) })
  await local.set('x', 'y')
  assert.equal(await local.get('x'), 'y')
} finally {
  await shared.disconnect()
  SharedMap.unlink(keyvName)
}

console.log(JSON.stringify({ ok: true, module: 'esm', runtime: process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}` }))
