// The error codes' one source is README's "Errors" table (parsed by __test__/fixtures/error-table.mjs).
// This copies its codes into the two places code needs them, between `<error-codes>` markers:
//   index.d.ts  the `LrukitErrorCode` union TypeScript users narrow on;
//   index.js    the set `isLrukitError` checks against.
//   node scripts/error-codes.mjs          rewrite both
//   node scripts/error-codes.mjs --check  exit 1 if either is out of date (a step of `npm test`)
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { errorTable } from '../__test__/fixtures/error-table.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const codes = [...errorTable().keys()]
const block = /(\/\/ <error-codes>\n)[\s\S]*?\/\/ <\/error-codes>/
const targets = {
  'index.d.ts': `export type LrukitErrorCode =\n${codes.map((c) => `  | '${c}'`).join('\n')}`,
  'index.js': `const ERROR_CODES = new Set([\n${codes.map((c) => `  '${c}',`).join('\n')}\n])`,
}
let stale = 0
for (const [file, body] of Object.entries(targets)) {
  const path = `${root}${file}`
  const text = readFileSync(path, 'utf8')
  if (!block.test(text)) throw new Error(`${file} has no // <error-codes> block`)
  const next = text.replace(block, (_, open) => `${open}${body}\n// </error-codes>`)
  if (next === text) continue
  stale++
  if (!process.argv.includes('--check')) writeFileSync(path, next)
}
if (process.argv.includes('--check')) {
  if (stale) {
    console.error('index.d.ts / index.js error codes are out of date with README "Errors": run node scripts/error-codes.mjs')
    process.exit(1)
  }
  console.log(`error codes match README "Errors" (${codes.length} codes)`)
} else {
  console.log(`${codes.length} error codes from README "Errors" → index.d.ts, index.js`)
}
