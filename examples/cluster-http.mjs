// HTTP workers sharing one cache: `node examples/cluster-http.mjs`
//
// The primary creates a SharedMap and forks two workers; each worker serves
// GET /square/<n> (a deliberately slow computation) from the shared cache, so a
// result computed by one worker is a hit for the other. The primary then sends a
// few requests itself, prints who answered and from where, and shuts down,
// unlinking the map.
import cluster from 'node:cluster'
import http from 'node:http'
import { createRequire } from 'node:module'

const { SharedMap } = createRequire(import.meta.url)('lrukit')
const NAME = `httpdemo${process.env.DEMO_ID ?? process.pid}`

if (cluster.isPrimary) {
  SharedMap.unlink(NAME)
  const cache = SharedMap.create(NAME, { capacity: 10_000, maxKeyBytes: 64, maxValueBytes: 64, ttl: 60_000 })
  const env = { DEMO_ID: String(process.pid) }
  const workers = [cluster.fork(env), cluster.fork(env)]
  // each worker reports its port once it listens (they share one port)
  const [{ port }] = await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))))
  const get = (path) =>
    new Promise((resolve, reject) => {
      // a fresh connection per request lets the OS spread requests over the workers
      http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve(JSON.parse(body)))
      }).on('error', reject)
    })
  for (const n of [12, 12, 12, 7, 12, 7]) {
    const r = await get(`/square/${n}`)
    console.log(`worker ${r.worker}: square(${n}) = ${r.value} (${r.cached ? 'shared cache hit' : 'computed'})`)
  }
  console.log('cache stats:', JSON.stringify(cache.stats(), ['size', 'hits', 'misses', 'sets']))
  for (const w of workers) w.kill()
  cache.close()
  SharedMap.unlink(NAME)
} else {
  // every worker opens the same map by name
  const cache = SharedMap.open(NAME)
  const slowSquare = (n) => {
    const until = Date.now() + 50
    while (Date.now() < until);
    return n * n
  }
  const server = http.createServer((req, res) => {
    const n = Number(req.url.split('/')[2])
    const key = `square:${n}`
    let value = cache.get(key)
    const cached = value !== undefined
    if (!cached) {
      value = slowSquare(n)
      cache.set(key, value)
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ worker: cluster.worker.id, value, cached }))
  })
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
}
