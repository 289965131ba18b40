// The SharedMap kill loop (fixtures/kill-loop.mjs), short: LRUKIT_WRITERS writers at once
// (default 4) SIGKILLed LRUKIT_KILLS times in all (default 20). `npm run test:kill` runs the long
// one (8 writers × 1,000 kills each) next to the Rust crash loops.
import { test } from './test.framework.mjs'
import { killLoop, describe } from './fixtures/kill-loop.mjs'

test.serial('SIGKILLed writers (mixed operations, eviction, TTLs, clear) lose no acknowledged write', async (t) => {
  const writers = Number(process.env.LRUKIT_WRITERS ?? 4)
  const kills = Number(process.env.LRUKIT_KILLS ?? 20)
  const r = await killLoop({ writers, kills })
  t.log(describe(r))
  t.deepEqual(r.problems, [])
  t.is(r.lost, 0)
  t.is(r.wrong, 0)
  t.is(r.stale, 0)
  t.true(r.verifyOk, r.verifyProblems.join('; '))
  t.is(r.kills, kills)
  t.true(r.acked > kills, `${r.acked} acknowledged writes across ${kills} kills`)
})
