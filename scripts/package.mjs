// `npm run package`: writes to dist/ the tarballs the publish job would publish for this machine:
//
//   dist/lrukit-<version>.tgz                    the main package. Its package.json gains the
//                                                exact-version optionalDependencies on every
//                                                platform package, as `napi prepublish` writes
//                                                them before `npm publish` (one per napi target,
//                                                named `<name>-<platformArchABI>`).
//   dist/lrukit-<platformArchABI>-<version>.tgz  this platform's binary package: npm/<platform>/
//                                                with the release addon built here.
//
// Both are made by `npm pack` from a staging directory, so what is in them is what `files` and
// `.npmignore` rules let through, exactly as at publish time. `__test__/package/install.mjs`
// installs them into an empty project.
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { buildIfNeeded } from './build-if-needed.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** `npm pack` of `dir` into `dest`; returns the tarball's path. */
function npmPack(dir, dest) {
  const out = execFileSync(npm, ['pack', '--json', '--pack-destination', dest], {
    cwd: dir,
    encoding: 'utf8',
    shell: process.platform === 'win32',
  })
  const [{ filename }] = JSON.parse(out)
  return join(dest, filename)
}

/**
 * Builds the release addon if needed (unless `build` is false: a CI job that downloaded the
 * addon), then packs both tarballs into `dist` (default `<repo>/dist`).
 * Returns `{ main, platform, platformPackage, version }`.
 */
export async function pack({ dist = join(root, 'dist'), build = true } = {}) {
  if (build) buildIfNeeded()
  const { parseTriple } = await import('@napi-rs/cli')
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const { name, version } = manifest
  const binaryName = manifest.napi.binaryName

  const addons = readdirSync(root).filter((f) => f.startsWith(`${binaryName}.`) && f.endsWith('.node'))
  if (addons.length !== 1) throw new Error(`expected one built addon in ${root}, found ${addons.length}: ${addons.join(', ')}`)
  const addon = addons[0]
  const platformArchABI = addon.slice(binaryName.length + 1, -'.node'.length)
  const platformDir = join(root, 'npm', platformArchABI)
  if (!existsSync(platformDir)) throw new Error(`no npm/${platformArchABI} package for the addon ${addon}`)

  mkdirSync(dist, { recursive: true })
  const stage = mkdtempSync(join(tmpdir(), 'lrukit-package-'))
  try {
    // The main package: package.json with the optionalDependencies napi prepublish adds, and
    // every file `files` names (npm pack then applies the same rules publish does).
    const mainDir = join(stage, 'main')
    mkdirSync(mainDir)
    const optionalDependencies = {}
    for (const triple of manifest.napi.targets) {
      optionalDependencies[`${name}-${parseTriple(triple).platformArchABI}`] = version
    }
    writeFileSync(join(mainDir, 'package.json'), `${JSON.stringify({ ...manifest, optionalDependencies }, null, 2)}\n`)
    for (const file of [...manifest.files, 'README.md', 'LICENSE']) {
      const from = join(root, file)
      if (!existsSync(from)) throw new Error(`package.json "files" names ${file}, which does not exist`)
      mkdirSync(dirname(join(mainDir, file)), { recursive: true })
      cpSync(from, join(mainDir, file), { recursive: true })
    }

    // This platform's package: npm/<platform>/ plus the addon.
    const platDir = join(stage, 'platform')
    cpSync(platformDir, platDir, { recursive: true })
    const platManifest = JSON.parse(readFileSync(join(platDir, 'package.json'), 'utf8'))
    if (platManifest.version !== version) {
      throw new Error(`npm/${platformArchABI}/package.json is at ${platManifest.version}, the main package at ${version}`)
    }
    copyFileSync(join(root, addon), join(platDir, platManifest.main))
    copyFileSync(join(root, 'LICENSE'), join(platDir, 'LICENSE'))

    for (const old of readdirSync(dist).filter((f) => f.endsWith('.tgz'))) rmSync(join(dist, old))
    return {
      version,
      platformPackage: platManifest.name,
      main: npmPack(mainDir, dist),
      platform: npmPack(platDir, dist),
    }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { main, platform } = await pack()
  console.log(`${main}\n${platform}`)
}
