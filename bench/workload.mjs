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
