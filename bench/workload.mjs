// Workload generators shared by the benchmarks: deterministic, so every run and
// every implementation sees the same key stream.

export function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` indices in 0..n drawn from zipf(s), as a plain array. */
export function zipfStream(n, s, count, seed) {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s)
  const rand = rng(seed)
  const out = Array.from({ length: count })
  for (let j = 0; j < count; j++) {
    const u = rand() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    out[j] = lo
  }
  return out
}

/**
 * The value benchmarks store under key `i`, of a type users store: a short string (~30 bytes,
 * flat, as a string read from I/O is, not a rope of its parts), a small object, or a number.
 */
export function valueOf(type, i) {
  if (type === 'object') return { id: i, name: `user ${i}`, tags: ['a', 'b'] }
  if (type === 'number') return i * 1.5
  const s = `session:${i}:${(i * 2654435761) >>> 0}:ok`.padEnd(30, '.')
  s.charCodeAt(0)
  return s
}

/** `valueOf(type, i)` for i in 0..n. */
export function valuesOf(type, n) {
  return Array.from({ length: n }, (_, i) => valueOf(type, i))
}

/**
 * Runs `step` (`ops` operations per call) for `seconds` after a `warmMs` warm-up; returns
 * operations per second.
 */
export function timed(step, ops, { seconds, warmMs }) {
  const warmEnd = performance.now() + warmMs
  while (performance.now() < warmEnd) step()
  let calls = 0
  const start = performance.now()
  const end = start + seconds * 1000
  let now = start
  while (now < end) {
    step()
    calls++
    now = performance.now()
  }
  return (calls * ops) / ((now - start) / 1000)
}
