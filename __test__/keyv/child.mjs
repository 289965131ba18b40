// Child process for __test__/keyv.spec.mjs: `node|bun child.mjs <map name> <me> <peer>`.
// Opens the map through a KeyvSharedMap, writes its own entry through Keyv, then reads through
// Keyv until the peer's entry appears (at most 20 s); prints what it read as one JSON line.
import Keyv from 'keyv'
import { KeyvSharedMap } from 'lrukit/keyv'

const [name, me, peer] = process.argv.slice(2)
const store = new KeyvSharedMap(name, { memorySize: 2 ** 20 })
const keyv = new Keyv({ store, namespace: 'procs' })
const errors = []
keyv.on('error', (error) => errors.push(String(error?.code ?? error)))

const wrote = await keyv.set(me, { pid: process.pid, from: me, list: [1, 2, 3] })
const deadline = Date.now() + 20_000
let seen
while ((seen = await keyv.get(peer)) === undefined && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 5))
}
process.stdout.write(JSON.stringify({ wrote, seen: seen ?? null, errors }) + '\n')
await keyv.disconnect()
