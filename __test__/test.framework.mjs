// One test API for two runners: ava under Node, bun:test under Bun.
// Spec files import { test } from here and use the subset of ava's `t` below.
import { spawn } from 'node:child_process'
import { isDeepStrictEqual } from 'node:util'

export const isBun = Boolean(process.versions.bun)

let test
if (isBun) {
  const bun = await import('bun:test')
  const fail = (msg) => {
    throw new Error(msg)
  }
  const show = (v) => {
    try {
      return typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)
    } catch {
      return String(v)
    }
  }
  const makeT = () => ({
    is: (a, b, m) => Object.is(a, b) || fail(m ?? `expected ${show(a)} to be ${show(b)}`),
    not: (a, b, m) => !Object.is(a, b) || fail(m ?? `expected ${show(a)} not to be ${show(b)}`),
    deepEqual: (a, b, m) => bun.expect(a, m).toEqual(b),
    true: (a, m) => a === true || fail(m ?? `expected true, got ${show(a)}`),
    false: (a, m) => a === false || fail(m ?? `expected false, got ${show(a)}`),
    truthy: (a, m) => Boolean(a) || fail(m ?? `expected truthy, got ${show(a)}`),
    falsy: (a, m) => !a || fail(m ?? `expected falsy, got ${show(a)}`),
    pass: () => {},
    log: (...a) => console.log(...a),
    throws: (fn, exp = {}) => {
      let err
      try {
        fn()
      } catch (e) {
        err = e
      }
      if (!err) fail('expected function to throw')
      if (exp.instanceOf && !(err instanceof exp.instanceOf))
        fail(`expected ${exp.instanceOf.name}, got ${err?.constructor?.name}: ${err?.message}`)
      if (exp.code !== undefined && err.code !== exp.code) fail(`expected code ${exp.code}, got ${err.code}`)
      if (exp.message instanceof RegExp && !exp.message.test(err.message))
        fail(`message ${show(err.message)} does not match ${exp.message}`)
      return err
    },
  })
  test = (name, fn) => bun.test(name, () => fn(makeT()))
  test.serial = test
  test.skip = (name, fn) => bun.test.skip(name, () => fn(makeT()))
} else {
  test = (await import('ava')).default
}

export { test, isDeepStrictEqual }

/** Runs a full garbage collection where the runtime allows it; false if it cannot. */
export function fullGc() {
  if (globalThis.Bun) {
    globalThis.Bun.gc(true)
    return true
  }
  if (typeof globalThis.gc === 'function') {
    globalThis.gc()
    return true
  }
  return false
}

/** Why `fullGc()` cannot collect here, or `undefined` when it can. */
export const noFullGc =
  globalThis.Bun || typeof globalThis.gc === 'function'
    ? undefined
    : 'needs a forced full GC: run node with --expose-gc (ava passes it, see package.json), or Bun'

/**
 * Registers test `name`, or, when `skipReason` is a string, registers it as skipped with the
 * reason in its title: ava lists it as `- name (skipped: reason)` and bun as `(skip) ...`, so a
 * check that cannot run here shows up as skipped instead of as a pass.
 */
export function testUnless(skipReason, name, fn) {
  return skipReason === undefined ? test(name, fn) : test.skip(`${name} (skipped: ${skipReason})`, fn)
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs `command args` to its end, SIGKILLed after `timeout` ms; resolves with its exit `code`
 * (or signal name) and its stdout as `out` (stderr goes to the test's). `env` adds variables.
 */
export function runProcess(command, args, { env, timeout = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, {
      env: env ? { ...process.env, ...env } : process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    const kill = setTimeout(() => p.kill('SIGKILL'), timeout)
    p.on('error', reject)
    // 'close', not 'exit': output can still be in flight when the process exits
    p.on('close', (code, signal) => {
      clearTimeout(kill)
      resolve({ code: code ?? signal, out })
    })
  })
}
