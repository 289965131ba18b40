// The `lrukit` command-line tool (bin/lrukit.mjs), run as a real child process (by the runtime that
// runs this spec: node under ava, bun under bun:test) against live maps: made by this test, and one
// written by another child process (fixtures/cli-writer.mjs). Output, --json shapes and exit codes
// of every subcommand; `ls` against /dev/shm (Linux).
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { SharedMap } from 'lrukit'

import { test, testUnless, isBun, sleep } from './test.framework.mjs'

const bin = fileURLToPath(new URL('../bin/lrukit.mjs', import.meta.url))
const writer = fileURLToPath(new URL('./fixtures/cli-writer.mjs', import.meta.url))
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

let counter = 0
/** A map name unique to this test process (at most 24 characters). */
const uniqueName = () => `cli${process.pid.toString(36)}${(counter++).toString(36)}${isBun ? 'b' : 'n'}`

const linux = process.platform === 'linux'
const NOT_LINUX = linux ? undefined : 'it reads /dev/shm, which only Linux has'

/** Starts `lrukit ...args` with this runtime; `done` resolves with { code, stdout, stderr }. */
function start(args, { timeout = 30_000 } = {}) {
  const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const io = { stdout: '', stderr: '' }
  p.stdout.on('data', (d) => (io.stdout += d))
  p.stderr.on('data', (d) => (io.stderr += d))
  const timer = setTimeout(() => p.kill('SIGKILL'), timeout)
  const done = new Promise((resolve, reject) => {
    p.on('error', reject)
    // 'close', not 'exit': output can still be in flight when the process exits
    p.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal, ...io })
    })
  })
  return { p, io, done }
}

const cli = (...args) => start(args).done

/** The one JSON document a --json run printed. */
function json(t, r) {
  try {
    return JSON.parse(r.stdout)
  } catch {
    t.true(false, `stdout is not one JSON document: ${r.stdout}`)
    return {}
  }
}

/** An error report: one line on stderr, no stack trace. */
function oneLineError(t, r, re) {
  const lines = r.stderr.trimEnd().split('\n')
  t.is(lines.length, 1, `one line on stderr: ${r.stderr}`)
  t.true(lines[0].startsWith('lrukit: '), r.stderr)
  t.true(re.test(lines[0]), `${lines[0]} matches ${re}`)
  t.false(/\n\s+at /.test(r.stderr), 'no stack trace')
}

/** Runs the writer fixture: another process creates `name` and writes `count` entries (+ 9 of other types). */
function writeFromChild(name, count) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [writer, name, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('error', reject)
    p.on('close', (code) => (code === 0 && out.trim() === 'done' ? resolve() : reject(new Error(`writer exited ${code}`))))
  })
}
const EXTRAS = 9

/** The columns of the row of `name` in a table (split on runs of 2+ spaces). */
function row(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line?.trim().split(/\s{2,}/)
}

testUnless(NOT_LINUX, 'ls lists the maps with size, entries, owner, mode and layout; an old layout and a foreign mode are flagged', async (t) => {
  const name = uniqueName()
  const old = `${name}v3`
  const group = `${name}g`
  for (const n of [name, old, group]) SharedMap.unlink(n)
  const m = SharedMap.create(name, { capacity: 5000 })
  const g = SharedMap.create(group, { capacity: 10, mode: 0o660 })
  try {
    for (let i = 0; i < 1234; i++) m.set(`k${i}`, i)
    // a copy of the segment whose header says layout version 3 (bytes 8..12 of the header)
    const image = readFileSync(`/dev/shm/lk_${name}`)
    image.writeUInt32LE(3, 8)
    writeFileSync(`/dev/shm/lk_${old}`, image, { mode: 0o600 })
    const size = statSync(`/dev/shm/lk_${name}`).size
    // the user name as the C library resolves it (Bun's os.userInfo() reads $USER instead)
    const me = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim()

    const r = await cli('ls', '--json')
    t.is(r.code, 0, r.stderr)
    const { maps } = json(t, r)
    const mine = maps.find((x) => x.name === name)
    t.truthy(mine, `${name} is listed`)
    t.is(mine.size, size)
    t.is(mine.entries, 1234)
    t.is(mine.owner, me)
    t.is(mine.uid, process.getuid())
    t.is(mine.mode, '0600')
    t.is(mine.layoutVersion, 4)
    t.true(mine.compatible)
    t.is(mine.state, 'ready')
    t.is(mine.creatorPid, process.pid)
    t.is(mine.error, null)
    const v3 = maps.find((x) => x.name === old)
    t.is(v3.layoutVersion, 3)
    t.false(v3.compatible)
    t.is(v3.entries, null)
    t.is(v3.error.code, 'EINCOMPAT')
    t.true(v3.error.message.includes('layout version 3'), v3.error.message)
    const grp = maps.find((x) => x.name === group)
    t.is(grp.mode, '0660')
    t.is(grp.error.code, 'EPERM')
    t.is(grp.entries, null)

    const text = await cli('ls')
    t.is(text.code, 0, text.stderr)
    t.deepEqual(text.stdout.split('\n')[0].split(/\s+/), ['NAME', 'SIZE', 'ENTRIES', 'OWNER', 'MODE', 'LAYOUT', 'NOTE'])
    const cols = row(text.stdout, name)
    t.is(cols[2], '1,234', 'entries with a thousands separator')
    t.true(/^\d+\.\d (KiB|MiB)$/.test(cols[1]), `human size ${cols[1]}`)
    t.deepEqual(cols.slice(3), [me, '0600', '4'])
    const oldCols = row(text.stdout, old)
    t.deepEqual(oldCols.slice(2, 6), ['EINCOMPAT', me, '0600', '3'])
    t.true(oldCols[6].includes('layout version 3, this build reads version 4'), oldCols[6])
    const grpCols = row(text.stdout, group)
    t.is(grpCols[2], 'EPERM')
    t.true(grpCols.at(-1).includes('--mode 660'), grpCols.at(-1))
    // columns are aligned: every row's ENTRIES ends where the header's does
    const header = text.stdout.split('\n')[0]
    const end = header.indexOf('ENTRIES') + 'ENTRIES'.length
    for (const n of [name, old, group]) {
      const line = text.stdout.split('\n').find((l) => l.startsWith(`${n} `))
      t.is(line[end], ' ', `${n}: ENTRIES right-aligned`)
      t.not(line[end - 1], ' ', `${n}: ENTRIES right-aligned`)
    }
    // the accepted mode widens as SharedMap.open's does
    const wide = json(t, await cli('ls', '--json', '--mode', '660'))
    t.is(wide.maps.find((x) => x.name === group).entries, 0)
  } finally {
    m.close()
    g.close()
    for (const n of [name, old, group]) SharedMap.unlink(n)
  }
})

test('a map another process wrote: stats, keys, get and sizes, as tables and as JSON', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const count = 1200
  await writeFromChild(name, count)
  try {
    const total = count + EXTRAS
    // stats
    const st = await cli('stats', name)
    t.is(st.code, 0, st.stderr)
    t.true(st.stdout.startsWith(`shared map "${name}"`), st.stdout)
    t.deepEqual(row(st.stdout, 'entries').slice(0, 2), ['entries', '1,209'])
    t.is(row(st.stdout, 'sets')[1], '1,209')
    const sj = json(t, await cli('stats', name, '--json'))
    t.is(sj.map, name)
    t.is(sj.stats.size, total)
    t.is(sj.stats.sets, total)
    t.is(typeof sj.stats.evictionsByReason.room, 'number')

    // keys: strings as they are, other types with their type
    const k = await cli('keys', name)
    t.is(k.code, 0, k.stderr)
    const lines = k.stdout.trimEnd().split('\n')
    t.is(lines.length, total)
    for (const l of ['w:0', 'w:1199', '42 (number)', '7 (bigint)', '0102ff (bytes, hex)', 'obj']) t.true(lines.includes(l), l)
    const kj = json(t, await cli('keys', name, '--json', '--prefix', 'w:11', '--limit', '5'))
    t.is(kj.total, 111, 'w:11 and w:110..w:1199 match the prefix')
    t.is(kj.keys.length, 5)
    t.true(kj.truncated)
    t.true(kj.keys.every((x) => x.type === 'string' && x.value.startsWith('w:11')))
    const typed = json(t, await cli('keys', name, '--json')).keys
    t.deepEqual(typed.find((x) => x.type === 'bigint'), { type: 'bigint', value: '7' })
    t.deepEqual(typed.find((x) => x.type === 'bytes'), { type: 'bytes', value: '0102ff' })
    const limited = await cli('keys', name, '--limit', '3')
    t.is(limited.stdout.trimEnd().split('\n').length, 3)
    t.true(limited.stderr.includes(`${(total - 3).toLocaleString('en-US')} more`), limited.stderr)

    // get: the value with its type
    const g = await cli('get', name, 'w:5')
    t.is(g.code, 0, g.stderr)
    t.is(g.stdout, '(string, 5 bytes) vvvvv\n')
    t.is((await cli('get', name, '42', '--number')).stdout, '(string, 9 bytes) forty-two\n')
    t.is((await cli('get', name, 'big')).stdout, `(bigint) ${2n ** 40n}\n`)
    t.is((await cli('get', name, 'buf')).stdout, `(bytes, 5, hex) ${Buffer.from('bytes').toString('hex')}\n`)
    t.is((await cli('get', name, 'obj')).stdout, '(json) {"a":[1,2]}\n')
    const cases = [
      ['w:5', { type: 'string', value: 'vvvvv' }],
      ['big', { type: 'bigint', value: String(2n ** 40n) }],
      ['flag', { type: 'boolean', value: true }],
      ['nothing', { type: 'null', value: null }],
      ['obj', { type: 'json', value: { a: [1, 2] } }],
      ['pi', { type: 'number', value: 3.5 }],
    ]
    for (const [key, expected] of cases) {
      const r = await cli('get', name, key, '--json')
      t.is(r.code, 0, r.stderr)
      t.deepEqual(json(t, r), { map: name, key: { type: 'string', value: key }, found: true, ...expected })
    }
    const num = json(t, await cli('get', name, '42', '--number', '--json'))
    t.deepEqual(num.key, { type: 'number', value: 42 })
    const missing = await cli('get', name, 'nope')
    t.is(missing.code, 1)
    t.is(missing.stdout, '')
    oneLineError(t, missing, new RegExp(`shared map "${name}": no key "nope"`))
    const missingJson = await cli('get', name, '42', '--json')
    t.is(missingJson.code, 1, 'the string "42" is not the number 42')
    t.deepEqual(json(t, missingJson), { map: name, key: { type: 'string', value: '42' }, found: false })

    // sizes: power-of-two buckets and the memory the entries need
    const sz = json(t, await cli('sizes', name, '--json'))
    t.is(sz.entries, total)
    t.is(sz.values.count, total)
    t.is(sz.values.buckets.reduce((a, b) => a + b.count, 0), total)
    t.is(sz.values.buckets.reduce((a, b) => a + b.bytes, 0), sz.values.bytes)
    for (const b of sz.values.buckets) t.true(b.from === 0 ? b.to === 1 : b.to === 2 * b.from && Number.isInteger(Math.log2(b.from)), JSON.stringify(b))
    // 'v'.repeat(i % 300) for i < 1200: lengths 128..255 four times over; no other value is that long
    t.is(sz.values.buckets.find((b) => b.from === 128).count, 4 * 128)
    t.is(sz.values.max, 299)
    t.is(sz.keys.count, total)
    t.is(sz.memory.options.capacity, total)
    t.is(sz.memory.required, SharedMap.calcRequiredMemorySize(sz.memory.options))
    t.is(sz.memory.current, sj.stats.memoryBytes)
    const szText = await cli('sizes', name)
    t.is(szText.code, 0, szText.stderr)
    // 128 + ... + 255 = 24,512 bytes, four times
    t.deepEqual(row(szText.stdout, '128 B – 256 B').slice(0, 4), ['128 B – 256 B', '512', `${((100 * 512) / total).toFixed(1)}%`, '95.8 KiB'])
    t.true(szText.stdout.includes('key size'))
    t.true(szText.stdout.includes(`SharedMap.calcRequiredMemorySize(${JSON.stringify(sz.memory.options)})`), szText.stdout)
  } finally {
    SharedMap.unlink(name)
  }
})

test('stats --watch refreshes with rates per second until SIGINT, then exits 0', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const m = SharedMap.create(name, { capacity: 100_000 })
  let i = 0
  const writes = setInterval(() => {
    for (let j = 0; j < 50; j++) m.set(`k${i++}`, i)
    m.get('k0')
  }, 20)
  try {
    const run = start(['stats', name, '--watch', '--interval', '100', '--json'])
    for (let waited = 0; run.io.stdout.split('\n').length < 4 && waited < 20_000; waited += 50) await sleep(50)
    run.p.kill('SIGINT')
    const r = await run.done
    t.is(r.code, 0, `exit 0 on Ctrl-C: ${r.stderr}`)
    const docs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))
    t.true(docs.length >= 3, `${docs.length} refreshes`)
    t.is(docs[0].rates, null, 'no rate before the second sample')
    const last = docs.at(-1)
    t.deepEqual(Object.keys(last.rates).sort(), ['evictions', 'hits', 'misses', 'sets'])
    t.true(last.rates.sets > 0, `sets/s ${last.rates.sets}`)
    t.true(last.stats.sets > docs[0].stats.sets)

    const text = start(['stats', name, '--watch', '--interval', '100'])
    for (let waited = 0; (text.io.stdout.match(/\/s/g) ?? []).length < 8 && waited < 20_000; waited += 50) await sleep(50)
    text.p.kill('SIGINT')
    const tr = await text.done
    t.is(tr.code, 0, tr.stderr)
    t.true(/^sets\s+[\d,]+\s+\d+\.\d\/s$/m.test(tr.stdout), tr.stdout)
    t.true(tr.stdout.includes('Ctrl-C'))
    t.is((await cli('stats', name, '--interval', '100')).code, 2, '--interval needs --watch')
  } finally {
    clearInterval(writes)
    m.close()
    SharedMap.unlink(name)
  }
})

testUnless(NOT_LINUX, 'verify: exit 0 when consistent, 1 with the problems listed', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const m = SharedMap.create(name, { capacity: 100, shards: 1 })
  try {
    m.set('a', 1)
    m.set('b', 2)
    const ok = await cli('verify', name)
    t.is(ok.code, 0, ok.stderr)
    t.true(ok.stdout.includes(`shared map "${name}": ok`), ok.stdout)
    t.deepEqual(json(t, await cli('verify', name, '--json')), { map: name, ok: true, problems: [] })
    // damage shard 0's entry count: its header starts at 20480 (4 KiB header + 256 lanes of 64 B), len at +72
    const fd = openSync(`/dev/shm/lk_${name}`, 'r+')
    const word = Buffer.alloc(8)
    word.writeBigUInt64LE(77n)
    writeSync(fd, word, 0, 8, 20480 + 72)
    closeSync(fd)
    const bad = await cli('verify', name)
    t.is(bad.code, 1)
    t.true(bad.stdout.includes('1 problem:'), bad.stdout)
    t.true(bad.stdout.includes('- shard 0: len is 77'), bad.stdout)
    const badJson = await cli('verify', name, '--json')
    t.is(badJson.code, 1)
    const doc = json(t, badJson)
    t.false(doc.ok)
    t.true(doc.problems.length === 1 && doc.problems[0].includes('len is 77'), JSON.stringify(doc))
  } finally {
    m.close()
    SharedMap.unlink(name)
  }
})

test('unlink: exit 0 and the name is gone; exit 1 when there was nothing to unlink', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  SharedMap.create(name, { capacity: 10 }).close()
  const r = await cli('unlink', name)
  t.is(r.code, 0, r.stderr)
  t.true(r.stdout.includes(`unlinked shared map "${name}"`))
  t.throws(() => SharedMap.open(name), { code: 'ENOENT' })
  const again = await cli('unlink', name)
  t.is(again.code, 1)
  oneLineError(t, again, /nothing to unlink/)
  const j = await cli('unlink', name, '--json')
  t.is(j.code, 1)
  t.deepEqual(json(t, j), { map: name, unlinked: false })
  SharedMap.create(name, { capacity: 10 }).close()
  const jr = await cli('unlink', name, '--json')
  t.is(jr.code, 0)
  t.deepEqual(json(t, jr), { map: name, unlinked: true })
})

test('dump and load: the entries go to a file and back into a map', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  const file = join(tmpdir(), `${name}.dump`)
  const m = SharedMap.create(name, { capacity: 1000 })
  try {
    for (let i = 0; i < 100; i++) m.set(`k${i}`, `v${i}`)
    const d = await cli('dump', name, file)
    t.is(d.code, 0, d.stderr)
    t.true(d.stdout.includes('dumped 100 entries'), d.stdout)
    m.clear()
    const l = json(t, await cli('load', name, file, '--json'))
    t.deepEqual(l, { map: name, file, loaded: 100 })
    t.is(m.get('k42'), 'v42')
    const dj = json(t, await cli('dump', name, file, '--json'))
    t.deepEqual(dj, { map: name, file, dumped: 100 })
  } finally {
    m.close()
    SharedMap.unlink(name)
    rmSync(file, { force: true })
  }
})

test('a map that cannot be opened: exit 3, one line naming the map and the code', async (t) => {
  const name = uniqueName()
  SharedMap.unlink(name)
  for (const args of [['stats', name], ['verify', name], ['keys', name], ['get', name, 'k'], ['sizes', name]]) {
    const r = await cli(...args)
    t.is(r.code, 3, `${args[0]}: ${r.stderr}`)
    t.is(r.stdout, '')
    oneLineError(t, r, new RegExp(`^lrukit: shared map "${name}": no such map \\(ENOENT\\)$`))
    const j = await cli(...args, '--json')
    t.is(j.code, 3)
    t.deepEqual(json(t, j), { error: { code: 'ENOENT', message: `shared map "${name}": no such map (ENOENT)` } })
  }
  const bad = await cli('stats', 'bad name')
  t.is(bad.code, 2, 'an invalid map name is a usage error')
  oneLineError(t, bad, /invalid map name "bad name".*\(ENAME\)/)
})

testUnless(NOT_LINUX, 'maps of another layout version or a mode beyond the accepted one: exit 3 with EINCOMPAT / EPERM', async (t) => {
  const name = uniqueName()
  const old = `${name}v3`
  for (const n of [name, old]) SharedMap.unlink(n)
  const g = SharedMap.create(name, { capacity: 10, mode: 0o660 })
  try {
    g.set('k', 'v')
    const image = readFileSync(`/dev/shm/lk_${name}`)
    image.writeUInt32LE(3, 8)
    writeFileSync(`/dev/shm/lk_${old}`, image, { mode: 0o600 })
    const inc = await cli('stats', old)
    t.is(inc.code, 3)
    oneLineError(t, inc, new RegExp(`shared map "${old}": layout version 3, this build reads version 4 \\(EINCOMPAT\\)`))
    const perm = await cli('get', name, 'k', '--json')
    t.is(perm.code, 3)
    t.is(json(t, perm).error.code, 'EPERM')
    t.true(json(t, perm).error.message.includes(name))
    const widened = await cli('get', name, 'k', '--mode', '660')
    t.is(widened.code, 0, widened.stderr)
    t.is(widened.stdout, '(string, 1 byte) v\n')
    const badMode = await cli('get', name, 'k', '--mode', 'rw')
    t.is(badMode.code, 2)
  } finally {
    g.close()
    for (const n of [name, old]) SharedMap.unlink(n)
  }
})

test('usage errors exit 2 with one line; help and --version exit 0', async (t) => {
  const usage = [
    [['frobnicate'], /unknown command "frobnicate"/],
    [[], /no command given/],
    [['stats'], /missing <name>/],
    [['get', 'x'], /missing <key>/],
    [['dump', 'x'], /missing <file>/],
    [['stats', 'x', 'y'], /unexpected argument "y"/],
    [['ls', '--bogus'], /Unknown option '--bogus'/],
    [['keys', 'x', '--watch'], /lrukit keys takes no --watch/],
    [['keys', 'x', '--limit', '0'], /--limit must be an integer/],
    [['get', 'x', 'abc', '--number'], /"abc" is not a number/],
    [['help', 'nope'], /unknown command "nope"/],
  ]
  for (const [args, re] of usage) {
    const r = await cli(...args)
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.is(r.stdout, '')
    oneLineError(t, r, re)
    const j = await cli(...args, '--json')
    t.is(j.code, 2)
    t.is(json(t, j).error.code, 'ERR_LRUKIT_USAGE', args.join(' '))
  }
  const help = await cli('help')
  t.is(help.code, 0)
  for (const cmd of ['ls', 'stats', 'verify', 'keys', 'get', 'sizes', 'unlink', 'dump', 'load']) {
    t.true(new RegExp(`^  ${cmd}\\b`, 'm').test(help.stdout), `help lists ${cmd}`)
  }
  t.true(help.stdout.includes('exit codes'))
  t.is((await cli('--help')).stdout, help.stdout)
  t.is((await cli('-h')).stdout, help.stdout)
  const one = await cli('keys', '--help')
  t.is(one.code, 0)
  t.true(one.stdout.startsWith('usage: lrukit keys <name> [--prefix p] [--limit n]'), one.stdout)
  t.is((await cli('help', 'keys')).stdout, one.stdout)
  const v = await cli('--version')
  t.deepEqual([v.code, v.stdout], [0, `lrukit ${version}\n`])
  t.deepEqual(json(t, await cli('--version', '--json')), { version })
  const hj = json(t, await cli('help', '--json'))
  t.deepEqual(hj.commands.map((c) => c.name), ['ls', 'stats', 'verify', 'keys', 'get', 'sizes', 'unlink', 'dump', 'load', 'help'])
})

testUnless(linux ? 'ls works here (Linux)' : undefined, 'ls explains in one line that listing is not possible on this platform, exit 2', async (t) => {
  const r = await cli('ls')
  t.is(r.code, 2)
  oneLineError(t, r, /listing maps needs \/dev\/shm, which only Linux has/)
})
