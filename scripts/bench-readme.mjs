// Copies benchmark results into the documents that show them (README.md and
// crates/flow-table/BENCH.md): every block between
//   <!-- bench/results/NAME.md -->  and  <!-- end bench/results/NAME.md -->
// is replaced by that file's content, so the tables never drift from bench/results.
//   node scripts/bench-readme.mjs          rewrite the documents
//   node scripts/bench-readme.mjs --check  exit 1 if one is not up to date
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const DOCUMENTS = ['README.md', 'crates/flow-table/BENCH.md']
const block = /<!-- (bench\/results\/[\w.-]+\.md) -->\n[\s\S]*?<!-- end \1 -->/g
const check = process.argv.includes('--check')
let stale = false
for (const doc of DOCUMENTS) {
  const path = `${root}${doc}`
  const text = readFileSync(path, 'utf8')
  let blocks = 0
  const next = text.replace(block, (_, file) => {
    blocks++
    const body = readFileSync(`${root}${file}`, 'utf8').trimEnd()
    return `<!-- ${file} -->\n${body}\n<!-- end ${file} -->`
  })
  if (blocks === 0) {
    console.error(`${doc} has no bench/results blocks`)
    process.exit(1)
  }
  const count = `${blocks} block${blocks === 1 ? '' : 's'}`
  if (check) {
    if (next !== text) {
      console.error(`${doc} is out of date with bench/results: run node scripts/bench-readme.mjs`)
      stale = true
    } else console.log(`${doc} matches bench/results (${count})`)
  } else {
    writeFileSync(path, next)
    console.log(`${doc}: ${count} from bench/results`)
  }
}
if (stale) process.exit(1)
