// Installs lrukit the way a user does and runs it without a Rust toolchain (a step of `npm test`):
//
// 1. `npm run package`'s tarballs (the main package and this platform's binary package) are packed
//    into a temporary directory; attw checks the main one's types under every resolution mode and
//    publint --strict its package.json.
// 2. An empty project installs `lrukit` from its tarball with plain `npm install`, on a PATH with no
//    cargo or rustc on it. The platform package is reached as lrukit's own optionalDependency (an
//    `overrides` entry points that one name at its tarball, since it is not on a registry); the
//    other platforms' packages are skipped by npm as they are for every user.
// 3. smoke.mjs (ESM) and smoke.cjs (CommonJS) run under Node 20, 22, 24 and Bun: all three classes
//    and lrukit/keyv, a SharedMap shared with a child process, the addon loaded from the platform
//    package.
// 4. tsc type-checks consumer.ts in that project against the installed declarations.
//
// Node 22 and 24 come from LRUKIT_EXTRA_NODES (what .ci/run installs); a runtime that is not
// available is a printed SKIP with its reason, and a failure when CI is set.
// LRUKIT_PACKAGE_RUNTIMES=node limits the runs to the Node running this script (a CI job per
// Node version); LRUKIT_PACKAGE_PREBUILT=1 packs the addon already in the checkout without building.
import { spawnSync } from 'node:child_process'
import { accessSync, constants, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { pack } from '../../scripts/package.mjs'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))
const strict = Boolean(process.env.CI)
const failures = []
const fail = (what) => {
  console.error(`FAIL ${what}`)
  failures.push(what)
}

const isExecutable = (p) => {
  try {
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}

// PATH without any directory that holds a Rust toolchain.
const rustTools = ['cargo', 'rustc', 'rustup'].flatMap((t) => (process.platform === 'win32' ? [`${t}.exe`] : [t]))
const path = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir && !rustTools.some((t) => isExecutable(join(dir, t))))
  .join(delimiter)
const env = { ...process.env, PATH: path }
for (const key of ['CARGO', 'CARGO_HOME', 'RUSTUP_HOME', 'RUSTUP_TOOLCHAIN', 'RUSTC', 'npm_config_prefix']) delete env[key]
if (spawnSync('cargo', ['--version'], { env }).status === 0) throw new Error('cargo is still runnable on the stripped PATH')

const run = (what, cmd, args, options = {}) => {
  const shell = process.platform === 'win32' && cmd.endsWith('.cmd')
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 240_000, shell, ...options })
  if (r.status !== 0) {
    fail(`${what}: exit ${r.status}${r.signal ? ` (${r.signal})` : ''}${r.error ? ` ${r.error.message}` : ''}\n${r.stdout ?? ''}${r.stderr ?? ''}`)
    return null
  }
  return r.stdout
}

const work = mkdtempSync(join(tmpdir(), 'lrukit-install-'))
try {
  const { main, platform, platformPackage, version } = await pack({ dist: join(work, 'dist'), build: process.env.LRUKIT_PACKAGE_PREBUILT !== '1' })
  console.log(`packed ${main}\n       ${platform}`)

  // Every entry point resolves with its types under node10, node16 (CJS and ESM) and bundler
  // resolution (attw), and package.json follows the packaging rules (publint --strict).
  const tool = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name)
  if (run('attw', tool('attw'), [main, '--format', 'table-flipped'], { cwd: root }) !== null) console.log('ok   attw: no problems')
  if (run('publint', tool('publint'), ['--strict', root], { cwd: root }) !== null) console.log('ok   publint --strict: all good')

  const project = join(work, 'consumer')
  const npmEnv = { cwd: project }
  mkdirSync(project)
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, overrides: { [platformPackage]: `file:${platform}` } }, null, 2)}\n`,
  )
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const installed = run('npm install', npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', main, 'keyv@^5'], npmEnv)
  if (installed === null) throw new Error(failures.at(-1))
  const lrukitFiles = readdirSync(join(project, 'node_modules', 'lrukit'))
  console.log(`installed lrukit@${version} (${lrukitFiles.length} files) and ${platformPackage} with no Rust toolchain on PATH`)
  for (const f of ['smoke.mjs', 'smoke.cjs', 'consumer.ts']) copyFileSync(join(here, f), join(project, f))

  // Runtimes: this Node, the extra Nodes, Bun.
  const runtimes = new Map([[Number(process.versions.node.split('.')[0]), process.execPath]])
  for (const node of (process.env.LRUKIT_EXTRA_NODES ?? '').split(delimiter).filter(Boolean)) {
    const v = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout?.trim()
    if (v) runtimes.set(Number(v.slice(1).split('.')[0]), node)
  }
  const wanted =
    process.env.LRUKIT_PACKAGE_RUNTIMES === 'node'
      ? [[`node ${process.versions.node.split('.')[0]}`, process.execPath]]
      : [
          ...[20, 22, 24].map((major) => [`node ${major}`, runtimes.get(major)]),
          ['bun', [join(root, 'node_modules', 'bun', 'bin', 'bun.exe'), join(root, 'node_modules', '.bin', 'bun')].find(isExecutable)],
        ]
  for (const [label, bin] of wanted) {
    if (!bin) {
      const why = label === 'bun' ? 'the bun devDependency is not installed' : `no Node ${label.slice(5)} binary (LRUKIT_EXTRA_NODES; .ci/run installs one)`
      if (strict) fail(`${label}: ${why}`)
      else console.log(`SKIP ${label}: ${why}`)
      continue
    }
    for (const script of ['smoke.mjs', 'smoke.cjs']) {
      const out = run(`${label} ${script}`, bin, [script, platformPackage], npmEnv)
      if (out !== null) console.log(`ok   ${label} ${script}: ${out.trim()}`)
    }
  }

  // Types, as a consumer's tsc sees them from the installed package.
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }),
  )
  if (run('tsc over consumer.ts', process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], npmEnv) !== null) {
    console.log('ok   tsc --noEmit over consumer.ts against the installed declarations')
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
if (failures.length) {
  console.error(`\n${failures.length} failure(s)`)
  process.exit(1)
}
