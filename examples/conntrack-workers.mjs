// A connection tracker shared by worker_threads: each worker handles packets for
// its own flows (think: one socket per worker) and records them in one FlowTable
// that every thread of the process sees by name. Flows idle for 200 ms count as
// closed; the main thread learns about them through `onExpire`, driven by one
// native timer, and prints a summary once the workers are done and every flow
// has been closed. (A flow idle for 200 ms in the middle of the run is closed
// and reopened by its next packet, as a real tracker would do.)
//
//   node examples/conntrack-workers.mjs [workers=4] [flowsPerWorker=500]
import { createRequire } from 'node:module'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

const { FlowTable } = createRequire(import.meta.url)('lrukit')
const IDLE_MS = 200

if (isMainThread) {
  const workers = Number(process.argv[2] ?? 4)
  const perWorker = Number(process.argv[3] ?? 500)
  let packets = 0
  let bytes = 0
  let closed = 0
  let longest = 0
  let sent = 0
  let done = 0
  const finishIfIdle = () => {
    if (done < workers || flows.size > 0) return
    console.log(JSON.stringify({ closed, packets, bytes, longestMs: Math.round(longest), allPacketsSeen: packets === sent }))
    flows.close() // stop the timer: the process can exit
    FlowTable.unshare('conntrack')
  }
  const flows = FlowTable.shared('conntrack', {
    timeout: IDLE_MS,
    expireInterval: 20,
    keepAlive: true, // the timer keeps the process alive until close()
    onExpire(entries) {
      for (const { key, value, lastSeen } of entries) {
        const flow = JSON.parse(value) // { packets, bytes, opened }
        closed++
        packets += flow.packets
        bytes += flow.bytes
        longest = Math.max(longest, lastSeen - flow.opened)
        if (closed <= 3) console.log(`closed ${key}: ${flow.packets} packets, ${flow.bytes} bytes`)
      }
      finishIfIdle()
    },
  })
  for (let id = 0; id < workers; id++) {
    new Worker(new URL(import.meta.url), { workerData: { id, perWorker } }).on('message', (m) => {
      console.log(`worker ${id}: ${m.packets} packets on ${m.flows} flows`)
      sent += m.packets
      done++
      finishIfIdle()
    })
  }
} else {
  const { id, perWorker } = workerData
  // Same name, same table (the first caller's options win; this handle needs no timer).
  const flows = FlowTable.shared('conntrack', { timeout: IDLE_MS })
  let seed = id * 7919 + 1
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
  let sent = 0
  for (let i = 0; i < perWorker * 20; i++) {
    const flow = `10.0.${id}.${Math.floor(rand() ** 2 * perWorker)}:443` // some flows are busier
    const size = 64 + Math.floor(rand() * 1400)
    const seen = flows.getAndTouch(flow) // refresh the idle timer
    const state = seen === undefined ? { packets: 0, bytes: 0, opened: flows.now() } : JSON.parse(seen)
    state.packets++
    state.bytes += size
    flows.set(flow, JSON.stringify(state))
    sent++
  }
  // Every flow of the partition gets at least one packet.
  for (let f = 0; f < perWorker; f++) {
    const flow = `10.0.${id}.${f}:443`
    if (!flows.has(flow)) {
      flows.set(flow, JSON.stringify({ packets: 1, bytes: 64, opened: flows.now() }))
      sent++
    }
  }
  parentPort.postMessage({ packets: sent, flows: perWorker })
}
