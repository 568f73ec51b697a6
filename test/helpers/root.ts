import { fileURLToPath } from 'node:url'

// The project's root directory, whether this file runs compiled (dist/test/helpers/root.js, the
// way `npm test` runs it) or from source under tap's TypeScript loader (test/helpers/root.ts).
// Ends with a slash.
export const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../../' : '../../', import.meta.url))

/** An absolute path of the project's, from a path relative to its root. */
export const fromRoot = (path: string): string => `${ROOT}${path}`
