#!/usr/bin/env node
// lrukit: see, check and manage SharedMap segments from a shell (`lrukit help`). Every command
// prints a readable table, or one JSON document with --json. Exit codes: 0 success, 1 the
// operation's negative answer (verify found problems, key missing, nothing to unlink), 2 usage
// errors and what this platform or build cannot do, 3 the map could not be opened or used.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
const { version } = require('../package.json')

const EXIT = { ok: 0, negative: 1, usage: 2, map: 3 }
const SHM_DIR = '/dev/shm'
const PREFIX = 'lk_'

/** An error the CLI reports in one line (or as `{ error: { code, message } }`) and exits with. */
class CliError extends Error {
  constructor(code, message, exit) {
    super(message)
    this.code = code
    this.exit = exit
  }
}

const usageError = (message) => new CliError('ERR_LRUKIT_USAGE', message, EXIT.usage)

// ---- commands ---------------------------------------------------------------------------------

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  mode: { type: 'string' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  prefix: { type: 'string' },
  limit: { type: 'string' },
  number: { type: 'boolean' },
}
/** Options every command takes. */
const COMMON = ['json', 'help', 'mode']

const COMMANDS = {
  ls: { args: [], options: [], summary: 'list every lrukit map on this machine (Linux: /dev/shm/lk_*)' },
  stats: {
    args: ['name'],
    options: ['watch', 'interval'],
    usage: 'stats <name> [--watch [--interval ms]]',
    summary: 'counters and sizes; --watch refreshes (every 1000 ms) with rates per second until Ctrl-C',
  },
  verify: { args: ['name'], options: [], summary: 'full invariant check: exit 0 if ok, 1 with the problems listed' },
  keys: {
    args: ['name'],
    options: ['prefix', 'limit'],
    usage: 'keys <name> [--prefix p] [--limit n]',
    summary: 'the keys (strings as is, other key types with their type); --prefix filters string keys',
  },
  get: {
    args: ['name', 'key'],
    options: ['number'],
    usage: 'get <name> <key> [--number]',
    summary: 'the value of a string key (--number: a numeric key) and its type; exit 1 if missing',
  },
  sizes: {
    args: ['name'],
    options: [],
    summary: 'histograms of value and key sizes, and the memory size the current entries need',
  },
  unlink: { args: ['name'], options: [], summary: 'remove the name (open handles keep working); exit 1 if it did not exist' },
  dump: { args: ['name', 'file'], options: [], summary: "write the map's entries to a file (map.dump)" },
  load: { args: ['name', 'file'], options: [], summary: 'load entries from a dump file into the map (map.load)' },
  help: { args: ['command?'], options: [], usage: 'help [command]', summary: 'this help, or one command\'s' },
}

const usageOf = (cmd) => COMMANDS[cmd].usage ?? [cmd, ...COMMANDS[cmd].args.map((a) => `<${a}>`)].join(' ')

function helpText(cmd) {
  if (cmd) {
    const c = COMMANDS[cmd]
    return `usage: lrukit ${usageOf(cmd)} [--mode <octal>] [--json]\n\n${c.summary}\n`
  }
  const width = Math.max(...Object.keys(COMMANDS).map((c) => usageOf(c).length))
  const lines = Object.keys(COMMANDS).map((c) => `  ${usageOf(c).padEnd(width)}  ${COMMANDS[c].summary}`)
  return `usage: lrukit <command> [options]

Inspect and manage lrukit SharedMaps (named shared memory) from a shell.

commands:
${lines.join('\n')}

options:
  --json          one machine-readable JSON document on stdout (errors too: { "error": { "code", "message" } })
  --mode <octal>  the most a segment may grant, as SharedMap.open's mode (default 600; 660 for a group map)
  -h, --help      help (also: lrukit help <command>)
  --version       lrukit's version

exit codes: 0 success, 1 a negative answer (verify found problems, key missing, nothing to unlink),
            2 usage error or not possible here, 3 the map could not be opened or used
`
}

// ---- formatting -------------------------------------------------------------------------------

/** 1234567 -> '1,234,567' (integers; other numbers as JavaScript prints them). */
function int(n) {
  if (typeof n === 'bigint' || Number.isInteger(n)) return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return String(n)
}

/** Bytes as B, KiB, MiB, GiB or TiB. */
function human(bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

const plural = (n, what) => `${int(n)} ${what}${n === 1 ? '' : 's'}`
const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-')
const octal = (mode) => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`

/** Aligned columns; the columns in `right` are right-aligned (numbers). */
function table(head, rows, right = []) {
  const all = head ? [head, ...rows] : rows
  if (all.length === 0) return ''
  const cols = Math.max(...all.map((r) => r.length))
  const widths = Array.from({ length: cols }, (_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)))
  return all
    .map((r) =>
      r
        .map((c, i) => {
          const s = String(c ?? '')
          return right.includes(i) ? s.padStart(widths[i]) : s.padEnd(widths[i])
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** A key or value as a JSON-safe `{ type, value }`: bigints as decimal strings, bytes as hex, non-finite numbers as strings. */
function typed(v) {
  if (typeof v === 'string') return { type: 'string', value: v }
  if (typeof v === 'number') return { type: 'number', value: Number.isFinite(v) ? v : String(v) }
  if (typeof v === 'bigint') return { type: 'bigint', value: v.toString() }
  if (typeof v === 'boolean') return { type: 'boolean', value: v }
  if (v === null) return { type: 'null', value: null }
  if (v instanceof Uint8Array) return { type: 'bytes', value: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') }
  return { type: 'json', value: v }
}

/** A key for a line of text: strings as they are, other types with their type. */
function keyText(k) {
  if (typeof k === 'string') return k
  const { type, value } = typed(k)
  return type === 'bytes' ? `${value} (bytes, hex)` : `${value} (${type})`
}

/** Bytes a key or value takes as stored: a string's UTF-8, a byte array's length, JSON text; 8 for numbers and bigints. */
function storedBytes(v) {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8')
  if (typeof v === 'number') return 8
  if (typeof v === 'bigint') return 8 * Math.max(1, Math.ceil((v < 0n ? -v : v).toString(16).length / 16))
  if (typeof v === 'boolean') return 1
  if (v === null || v === undefined) return 0
  if (v instanceof Uint8Array) return v.byteLength
  return Buffer.byteLength(JSON.stringify(v), 'utf8')
}

// ---- the map ----------------------------------------------------------------------------------

let native
/** lrukit's classes, loaded on first use (help and --version work without the addon). */
function lrukit() {
  if (!native) {
    try {
      native = require('../index.js')
    } catch (e) {
      throw new CliError('ERR_LRUKIT_UNSUPPORTED', `cannot load lrukit's native addon: ${firstLine(e.message)}`, EXIT.usage)
    }
  }
  return native
}

const firstLine = (s) => String(s).split('\n')[0]

/** The map error `e` as one line naming the map and the code: exit 3 (2 for an invalid name). */
function mapError(name, e) {
  if (e instanceof CliError) return e
  if (typeof e?.code !== 'string') {
    return new CliError('ERR_LRUKIT_INTERNAL', `shared map "${name}": unexpected error: ${firstLine(e?.message ?? e)}`, EXIT.map)
  }
  let detail = firstLine(e.message)
  // the binding's messages start with the code and often name the map: say each once
  if (detail.startsWith(`${e.code}: `)) detail = detail.slice(e.code.length + 2)
  if (detail.startsWith(`shared map "${name}": `)) detail = detail.slice(`shared map "${name}": `.length)
  if (e.code === 'ENOENT' && detail === `no shared map named "${name}"`) detail = 'no such map'
  if (e.code === 'ENAME') return new CliError('ENAME', `${detail} (ENAME)`, EXIT.usage)
  return new CliError(e.code, `shared map "${name}": ${detail} (${e.code})`, EXIT.map)
}

function openMap(name, opts) {
  const { SharedMap } = lrukit()
  try {
    return SharedMap.open(name, { mode: opts.mode })
  } catch (e) {
    throw mapError(name, e)
  }
}

/** Runs `fn(map)` on the opened map `name`, closing it after; errors name the map. */
async function withMap(name, opts, fn) {
  const map = openMap(name, opts)
  try {
    return await fn(map)
  } catch (e) {
    throw mapError(name, e)
  } finally {
    map.close()
  }
}

// ---- ls ---------------------------------------------------------------------------------------

/** uid -> user name from /etc/passwd (empty when unreadable). */
function users() {
  const byUid = new Map()
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid] = line.split(':')
      if (user && uid && !byUid.has(Number(uid))) byUid.set(Number(uid), user)
    }
  } catch {
    // no /etc/passwd: owners are shown as uids
  }
  return byUid
}

/** Why a segment is refused by the trust rule, short. */
function eperm(st, euid) {
  if (st.uid !== euid) return `owned by uid ${st.uid}, not by you (uid ${euid}): refused`
  return `mode ${octal(st.mode)} lets others write: refused (accept it with --mode ${(st.mode & 0o777).toString(8)})`
}

function ls(_args, opts) {
  if (process.platform !== 'linux') {
    throw new CliError(
      'ERR_LRUKIT_UNSUPPORTED',
      `listing maps needs ${SHM_DIR}, which only Linux has (on ${process.platform} shared memory names are not in the file system); the other commands work with a map's name`,
      EXIT.usage,
    )
  }
  const { SharedMap } = lrukit()
  const names = readdirSync(SHM_DIR)
    .filter((f) => f.startsWith(PREFIX))
    .sort()
  const owners = users()
  const euid = process.geteuid?.() ?? -1
  const maps = []
  for (const file of names) {
    const name = file.slice(PREFIX.length)
    let st
    try {
      st = statSync(`${SHM_DIR}/${file}`)
    } catch {
      continue // unlinked meanwhile
    }
    const row = {
      name,
      size: st.size,
      entries: null,
      uid: st.uid,
      owner: owners.get(st.uid) ?? String(st.uid),
      mode: octal(st.mode),
      layoutVersion: null,
      compatible: false,
      state: null,
      createdAt: null,
      creatorPid: null,
      shards: null,
      error: null,
    }
    let info
    try {
      info = SharedMap.describe(name, { mode: opts.mode })
    } catch (e) {
      row.error = {
        code: e.code ?? 'ERR_LRUKIT_INTERNAL',
        message: e.code === 'EPERM' ? eperm(st, euid) : mapError(name, e).message,
      }
    }
    if (info) {
      Object.assign(row, {
        layoutVersion: info.layoutVersion,
        compatible: info.compatible,
        state: info.state,
        createdAt: info.createdAt,
        creatorPid: info.creatorPid,
        shards: info.shards,
      })
      if (info.compatible) {
        try {
          const map = SharedMap.open(name, { mode: opts.mode, lockTimeout: 1000 })
          row.entries = map.size
          map.close()
        } catch (e) {
          row.error = { code: e.code ?? 'ERR_LRUKIT_INTERNAL', message: mapError(name, e).message }
        }
      } else if (info.problemCode) {
        row.error = { code: info.problemCode, message: mapError(name, { code: info.problemCode, message: info.problem }).message }
      }
      // else: not ready yet, its creator at work ('creating'; 'not-ready' where that cannot be told)
    }
    maps.push(row)
  }
  if (opts.json) return { doc: { maps } }
  if (maps.length === 0) return { text: `no lrukit maps in ${SHM_DIR}` }
  const rows = maps.map((m) => [
    m.name,
    human(m.size),
    m.entries === null ? (m.error?.code ?? m.state ?? '-') : int(m.entries),
    m.owner,
    m.mode,
    m.layoutVersion ?? '?',
    m.error ? shortReason(m) : m.entries === null ? 'not ready: its creator is still initialising it' : '',
  ])
  return { text: table(['NAME', 'SIZE', 'ENTRIES', 'OWNER', 'MODE', 'LAYOUT', 'NOTE'], rows, [1, 2]) }
}

/** The NOTE of a map `ls` could not open: the reason without the map's name. */
function shortReason(m) {
  const prefix = `shared map "${m.name}": `
  let msg = m.error.message.startsWith(prefix) ? m.error.message.slice(prefix.length) : m.error.message
  return `${m.error.code}: ${msg.replace(/ \([A-Z_]+\)$/, '')}`
}

// ---- stats ------------------------------------------------------------------------------------

const RATED = ['hits', 'misses', 'sets', 'evictions']

function statsRows(s, rates) {
  const rate = (k) => (rates ? `${rates[k].toFixed(1)}/s` : '')
  const e = s.evictionsByReason
  return [
    ['entries', int(s.size), `of ${int(s.capacity)} (${pct(s.size, s.capacity)})`],
    ['memory', human(s.memoryBytes), `segment; ${human(s.ringBytes)} of it for entries, in ${plural(s.shards, 'shard')}`],
    ['used', human(s.usedBytes), `${pct(s.usedBytes, s.ringBytes)} of the entries' memory (${human(s.liveRecordBytes)} live records)`],
    ['free', human(s.freeBytes), ''],
    ['payload', human(s.allocatedBytes), 'key + value bytes stored'],
    ['hits', int(s.hits), rate('hits')],
    ['misses', int(s.misses), rate('misses')],
    ['hit rate', pct(s.hits, s.hits + s.misses), ''],
    ['sets', int(s.sets), rate('sets')],
    ['deletes', int(s.deletes), ''],
    ['evictions', int(s.evictions), `${rates ? `${rate('evictions')}  ` : ''}room ${int(e.room)}, capacity ${int(e.capacity)}, manual ${int(e.manual)}`],
    ['expirations', int(s.expirations), ''],
    ['moves', int(s.moves), ''],
    ['lock recoveries', int(s.lockRecoveries), ''],
    ['repairs', int(s.repairs), ''],
  ]
}

function statsText(name, s, rates) {
  return `shared map "${name}"\n${table(null, statsRows(s, rates), [1])}`
}

function positiveInt(v, what, min = 1) {
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw usageError(`${what} must be an integer ≥ ${min}, got "${v}"`)
  }
  return Number(v)
}

async function stats([name], opts) {
  if (opts.interval !== undefined && !opts.watch) throw usageError('--interval goes with --watch')
  if (!opts.watch) return withMap(name, opts, (map) => (opts.json ? { doc: { map: name, stats: map.stats() } } : { text: statsText(name, map.stats()) }))
  const interval = opts.interval === undefined ? 1000 : positiveInt(opts.interval, '--interval', 10)
  const map = openMap(name, opts)
  const tty = process.stdout.isTTY && !opts.json
  return new Promise((resolve, reject) => {
    let prev = null
    let timer = null
    const stop = () => {
      clearTimeout(timer)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      map.close()
      resolve({})
    }
    const tick = () => {
      try {
        const s = map.stats()
        const at = performance.now()
        const rates = prev && Object.fromEntries(RATED.map((k) => [k, ((s[k] - prev.s[k]) * 1000) / (at - prev.at)]))
        prev = { s, at }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ map: name, time: Date.now(), stats: s, rates: rates ?? null })}\n`)
        } else {
          const head = tty ? '\x1b[H\x1b[2J' : prev && rates ? '\n' : ''
          process.stdout.write(`${head}${statsText(name, s, rates ?? undefined)}\n(every ${int(interval)} ms; Ctrl-C stops)\n`)
        }
        timer = setTimeout(tick, interval)
      } catch (e) {
        stop()
        reject(mapError(name, e))
      }
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    tick()
  })
}

// ---- verify, keys, get ------------------------------------------------------------------------

function verify([name], opts) {
  return withMap(name, opts, (map) => {
    const { ok, problems } = map.verify()
    const exit = ok ? EXIT.ok : EXIT.negative
    if (opts.json) return { doc: { map: name, ok, problems }, exit }
    if (ok) return { text: `shared map "${name}": ok (${int(map.size)} entries checked)`, exit }
    const list = problems.map((p) => `  - ${p}`).join('\n')
    return { text: `shared map "${name}": ${plural(problems.length, 'problem')}:\n${list}`, exit }
  })
}

function keys([name], opts) {
  const limit = opts.limit === undefined ? Infinity : positiveInt(opts.limit, '--limit')
  return withMap(name, opts, (map) => {
    let all = [...map.keys()]
    if (opts.prefix !== undefined) all = all.filter((k) => typeof k === 'string' && k.startsWith(opts.prefix))
    const shown = all.slice(0, limit)
    if (opts.json) return { doc: { map: name, total: all.length, keys: shown.map(typed), truncated: shown.length < all.length } }
    const more = all.length - shown.length
    return { text: shown.map(keyText).join('\n'), note: more > 0 ? `… ${int(more)} more (--limit ${int(limit)})` : undefined }
  })
}

function get([name, key], opts) {
  let k = key
  if (opts.number) {
    k = Number(key)
    if (key.trim() === '' || (Number.isNaN(k) && key.trim() !== 'NaN')) throw usageError(`--number: "${key}" is not a number`)
  }
  return withMap(name, opts, (map) => {
    const v = map.peek(k)
    if (v === undefined) {
      if (opts.json) return { doc: { map: name, key: typed(k), found: false }, exit: EXIT.negative }
      return { error: `shared map "${name}": no key ${keyText(typeof k === 'string' ? JSON.stringify(k) : k)}`, exit: EXIT.negative }
    }
    const t = typed(v)
    if (opts.json) return { doc: { map: name, key: typed(k), found: true, ...t } }
    const shown = t.type === 'json' ? JSON.stringify(v) : t.type === 'bytes' ? t.value : String(t.value)
    const label = t.type === 'bytes' ? `bytes, ${int(v.byteLength)}, hex` : t.type === 'string' ? `string, ${plural(storedBytes(v), 'byte')}` : t.type
    return { text: `(${label}) ${shown}` }
  })
}

// ---- sizes ------------------------------------------------------------------------------------

/** Power-of-two buckets of `sizes`: [0], [1], [2, 4), [4, 8), ... with counts and bytes. */
function histogram(sizes) {
  const buckets = new Map()
  let total = 0
  let max = 0
  for (const s of sizes) {
    const from = s === 0 ? 0 : 2 ** Math.floor(Math.log2(s))
    const b = buckets.get(from) ?? { from, to: from === 0 ? 1 : from * 2, count: 0, bytes: 0 }
    b.count++
    b.bytes += s
    buckets.set(from, b)
    total += s
    max = Math.max(max, s)
  }
  const list = [...buckets.values()].sort((a, b) => a.from - b.from)
  return { count: sizes.length, bytes: total, average: sizes.length ? total / sizes.length : 0, max, buckets: list }
}

function histogramText(title, h) {
  const rows = h.buckets.map((b) => [
    b.from === 0 ? '0 B' : b.to - b.from === 1 ? human(b.from) : `${human(b.from)} – ${human(b.to)}`,
    int(b.count),
    pct(b.count, h.count),
    human(b.bytes),
    pct(b.bytes, h.bytes),
  ])
  rows.push(['total', int(h.count), '', human(h.bytes), ''])
  const head = [`${title} (from – below)`, 'ENTRIES', 'SHARE', 'BYTES', 'SHARE']
  return `${table(head, rows, [1, 2, 3, 4])}\naverage ${human(Math.round(h.average))}, largest ${human(h.max)}`
}

function sizes([name], opts) {
  return withMap(name, opts, (map) => {
    const { SharedMap } = lrukit()
    const entries = [...map.entries()]
    const values = histogram(entries.map(([, v]) => storedBytes(v)))
    const keysH = histogram(entries.map(([k]) => storedBytes(k)))
    const memoryBytes = map.stats().memoryBytes
    let memory = { current: memoryBytes, required: null, options: null }
    let advice
    if (entries.length === 0) {
      advice = 'the map is empty: no sizes to go by'
    } else {
      const options = {
        capacity: entries.length,
        avgKeyBytes: Math.max(1, Math.ceil(keysH.average)),
        avgValueBytes: Math.max(1, Math.ceil(values.average)),
      }
      if (values.max > 2 ** 20) options.maxValueBytes = values.max
      if (keysH.max > 256) options.maxKeyBytes = keysH.max
      try {
        const required = SharedMap.calcRequiredMemorySize(options)
        memory = { current: memoryBytes, required, options }
        advice = `the ${int(entries.length)} entries need about ${human(required)} (${int(required)} bytes): SharedMap.calcRequiredMemorySize(${JSON.stringify(options)}); this map has ${human(memoryBytes)}. Set memorySize to at least that, with room for growth.`
      } catch (e) {
        advice = `no memory size fits these entries: ${firstLine(e.message)}`
        memory = { current: memoryBytes, required: null, options, error: { code: e.code, message: firstLine(e.message) } }
      }
    }
    if (opts.json) return { doc: { map: name, entries: entries.length, values, keys: keysH, memory } }
    return {
      text: `shared map "${name}": ${int(entries.length)} entries\n\n${histogramText('value size', values)}\n\n${histogramText('key size', keysH)}\n\n${advice}`,
    }
  })
}

// ---- unlink, dump, load -----------------------------------------------------------------------

function unlink([name], opts) {
  const { SharedMap } = lrukit()
  let removed
  try {
    removed = SharedMap.unlink(name)
  } catch (e) {
    throw mapError(name, e)
  }
  if (opts.json) return { doc: { map: name, unlinked: removed }, exit: removed ? EXIT.ok : EXIT.negative }
  if (!removed) return { error: `shared map "${name}": no such map, nothing to unlink`, exit: EXIT.negative }
  return { text: `unlinked shared map "${name}" (processes that have it open keep using it until they close it)` }
}

function dumpOrLoad(method) {
  return ([name, file], opts) =>
    withMap(name, opts, async (map) => {
      const count = await map[method](file)
      if (opts.json) return { doc: { map: name, file, [method === 'dump' ? 'dumped' : 'loaded']: count } }
      const n = int(count)
      return { text: method === 'dump' ? `dumped ${n} entries of shared map "${name}" to ${file}` : `loaded ${n} entries from ${file} into shared map "${name}"` }
    })
}

const RUN = { ls, stats, verify, keys, get, sizes, unlink, dump: dumpOrLoad('dump'), load: dumpOrLoad('load') }

// ---- main -------------------------------------------------------------------------------------

function parseMode(v) {
  if (v === undefined) return undefined
  const m = /^(?:0o?)?([0-7]{3})$/.exec(v)
  if (!m) throw usageError(`--mode must be octal permission bits such as 600 or 660, got "${v}"`)
  return Number.parseInt(m[1], 8)
}

async function main(argv) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
  } catch (e) {
    throw usageError(firstLine(e.message))
  }
  const { values: opts, positionals } = parsed
  const [cmd, ...args] = positionals
  if (opts.version) return opts.json ? { doc: { version } } : { text: `lrukit ${version}` }
  if (cmd === undefined) {
    if (opts.help) return opts.json ? { doc: helpDoc() } : { text: helpText().trimEnd() }
    throw usageError('no command given (lrukit help lists them)')
  }
  if (!Object.hasOwn(COMMANDS, cmd)) throw usageError(`unknown command "${cmd}" (lrukit help lists them)`)
  if (cmd === 'help' || opts.help) {
    const topic = cmd === 'help' ? args[0] : cmd
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw usageError(`unknown command "${topic}" (lrukit help lists them)`)
    return opts.json ? { doc: helpDoc(topic) } : { text: helpText(topic).trimEnd() }
  }
  const spec = COMMANDS[cmd]
  for (const o of Object.keys(opts)) {
    if (!COMMON.includes(o) && !spec.options.includes(o)) throw usageError(`lrukit ${cmd} takes no --${o} (usage: lrukit ${usageOf(cmd)})`)
  }
  if (args.length < spec.args.length) throw usageError(`missing <${spec.args[args.length]}> (usage: lrukit ${usageOf(cmd)})`)
  if (args.length > spec.args.length) throw usageError(`unexpected argument "${args[spec.args.length]}" (usage: lrukit ${usageOf(cmd)})`)
  opts.mode = parseMode(opts.mode)
  return RUN[cmd](args, opts)
}

function helpDoc(topic) {
  const commands = Object.keys(COMMANDS)
    .filter((c) => topic === undefined || c === topic)
    .map((c) => ({ name: c, usage: `lrukit ${usageOf(c)}`, summary: COMMANDS[c].summary }))
  return { version, commands, exitCodes: { 0: 'success', 1: 'negative answer', 2: 'usage error or not possible here', 3: 'the map could not be opened or used' } }
}

const json = process.argv.includes('--json')
try {
  const r = await main(process.argv.slice(2))
  if (r.doc !== undefined) {
    process.stdout.write(`${JSON.stringify(r.doc, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`)
  } else if (r.text !== undefined && r.text !== '') {
    process.stdout.write(`${r.text}\n`)
  }
  if (r.note) process.stderr.write(`${r.note}\n`)
  if (r.error) process.stderr.write(`lrukit: ${r.error}\n`)
  process.exitCode = r.exit ?? EXIT.ok
} catch (e) {
  const err =
    e instanceof CliError
      ? e
      : new CliError('ERR_LRUKIT_INTERNAL', `unexpected error: ${firstLine(e?.message ?? e)} (set LRUKIT_DEBUG=1 for the stack)`, EXIT.map)
  if (process.env.LRUKIT_DEBUG && !(e instanceof CliError)) process.stderr.write(`${e?.stack}\n`)
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } }, null, 2)}\n`)
  else process.stderr.write(`lrukit: ${err.message}\n`)
  process.exitCode = err.exit
}
