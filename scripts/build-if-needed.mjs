// What a fresh clone needs before anything runs, done on demand by `npm run demo`, `npm test`, the
// benchmarks and the kill loop, so the README's two commands are all a newcomer types:
//   - ensureDependencies(): runs `npm ci` (saying so) when node_modules lacks the tools;
//   - buildIfNeeded(): builds the release addon unless an up-to-date one for this platform exists.
// What a newcomer can be missing (a Rust toolchain) is reported in one sentence, with the fix, and
// the process exits 1: no stack trace.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const win = process.platform === 'win32'
const npm = win ? 'npm.cmd' : 'npm'

/** Prints `message` as the one line a newcomer needs and exits 1. */
export function explainAndExit(message) {
  console.error(`lrukit: ${message}`)
  process.exit(1)
}

/** Whether `cargo` runs from PATH. */
export function hasCargo() {
  return spawnSync('cargo', ['--version'], { stdio: 'ignore', shell: win }).status === 0
}

/** Exits with one sentence when there is no Rust toolchain on PATH. */
export function requireCargo(what = 'Building the native addon') {
  if (!hasCargo()) {
    explainAndExit(
      `${what} needs a Rust toolchain and \`cargo\` is not on PATH: install it from https://rustup.rs, open a new shell, and run this command again.`,
    )
  }
}

/** Runs `npm ci` when node_modules is missing the project's tools (a fresh clone). */
export function ensureDependencies() {
  const napi = join(root, 'node_modules', '.bin', win ? 'napi.cmd' : 'napi')
  if (existsSync(napi)) return false
  console.log('> node_modules is missing or incomplete: running `npm ci` first (once per clone)')
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit', shell: win })
  if (r.status !== 0) {
    explainAndExit(`\`npm ci\` failed (its output is above); fix that, or run \`npm ci\` yourself, then run this command again.`)
  }
  return true
}

function newest(dir) {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) {
      if (e.name !== 'target' && e.name !== 'node_modules') t = Math.max(t, newest(p))
    } else if (/\.(rs|toml)$/.test(e.name)) {
      t = Math.max(t, statSync(p).mtimeMs)
    }
  }
  return t
}

export function buildIfNeeded({ force = false } = {}) {
  const addons = readdirSync(root).filter((f) => /^lrukit\..*\.node$/.test(f))
  const built = addons.length ? Math.max(...addons.map((f) => statSync(join(root, f)).mtimeMs)) : 0
  const sources = Math.max(newest(join(root, 'crates')), statSync(join(root, 'Cargo.toml')).mtimeMs)
  if (!force && built > sources && existsSync(join(root, 'native.js'))) return false
  ensureDependencies()
  requireCargo()
  console.log('> building the native addon (napi build --release; the first build takes about a minute)')
  try {
    execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit', shell: win })
  } catch {
    explainAndExit('`npm run build` failed (the compiler output is above).')
  }
  return true
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildIfNeeded({ force: process.argv.includes('--force') })
