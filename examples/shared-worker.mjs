// Child of examples/demo.mjs: memoises sha256(file) in a SharedMap that every
// process of the demo opens by name, so a file hashed by one process is a hit
// for all the others.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const { SharedMap } = createRequire(import.meta.url)('lrukit')
const [name, id, list] = process.argv.slice(2)
const files = JSON.parse(readFileSync(list, 'utf8'))
const map = SharedMap.open(name)
let hits = 0
let hashed = 0
let seed = Number(id) * 7919 + 1
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
for (let i = 0; i < 3000; i++) {
  const path = files[Math.floor(files.length * rand() ** 3)] // skewed: a few files are popular
  if (map.get(path) !== undefined) {
    hits++
    map.incr('hits')
    continue
  }
  map.set(path, createHash('sha256').update(readFileSync(path)).digest('hex'))
  hashed++
  map.incr('misses')
}
process.stdout.write(JSON.stringify({ pid: process.pid, hits, hashed }))
map.close()
