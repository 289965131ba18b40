// Copies benchmark results into the README: every block between
//   <!-- bench/results/NAME.md -->  and  <!-- end bench/results/NAME.md -->
// is replaced by that file's content, so README tables never drift from bench/results.
//   node scripts/bench-readme.mjs          rewrite README.md
//   node scripts/bench-readme.mjs --check  exit 1 if README.md is not up to date
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const readmePath = `${root}README.md`
const readme = readFileSync(readmePath, 'utf8')
const block = /<!-- (bench\/results\/[\w.-]+\.md) -->\n[\s\S]*?<!-- end \1 -->/g
let blocks = 0
const next = readme.replace(block, (_, file) => {
  blocks++
  const body = readFileSync(`${root}${file}`, 'utf8').trimEnd()
  return `<!-- ${file} -->\n${body}\n<!-- end ${file} -->`
})
if (blocks === 0) {
  console.error('README.md has no bench/results blocks')
  process.exit(1)
}
if (process.argv.includes('--check')) {
  if (next !== readme) {
    console.error('README.md is out of date with bench/results: run node scripts/bench-readme.mjs')
    process.exit(1)
  }
  console.log(`README.md matches bench/results (${blocks} block${blocks === 1 ? '' : 's'})`)
} else {
  writeFileSync(readmePath, next)
  console.log(`README.md: ${blocks} block${blocks === 1 ? '' : 's'} from bench/results`)
}
