// Types of the ESM entry of `lrukit/keyv` (index.mjs): the same classes and types as the CommonJS
// entry, declared once in index.d.ts.
export * from './index.js'
