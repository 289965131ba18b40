// Builds the release addon unless an up-to-date one for this platform exists.
// Used by `npm test` and `npm run demo` so a fresh clone needs no extra step.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

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
  console.log('> building the native addon (napi build --release)')
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  })
  return true
}

if (process.argv[1] === fileURLToPath(import.meta.url)) buildIfNeeded({ force: process.argv.includes('--force') })
