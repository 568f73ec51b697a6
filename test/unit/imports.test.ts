import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import t from 'tap'
import { fromRoot } from '../helpers/root.js'

// The shape of src/: imports point downward, and no file reaches itself through others.
// Each folder sits on a floor; a file may import its own folder or a lower floor, never a
// sibling on the same floor or anything above. A new folder must be given its floor here.

const FLOORS: readonly (readonly string[])[] = [
  // Domain-free or protocol-only: what everything else is built on.
  ['oci', 'config', 'observability'],
  // Talking to the registry, remembering pushes, walking a list.
  ['upstream', 'ledger', 'validate'],
  // Naming what is wrong; putting it right.
  ['diagnose', 'repair'],
  // One list examined end to end (the proxy and `manifest-guard check` share it).
  ['inspect'],
  // The pass-through path a request takes, and the list push seam on it.
  ['proxy'],
  // The admin side: API, decisions page, health, registry events.
  ['admin'],
  // The app that composes both, and the commands (src/*.ts).
  ['.'],
]

const ROOT = fromRoot('src')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

/** Relative imports of a file, type-only ones included (a cycle of types is still a knot to read). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.[^'"]+)['"]/g), ...text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)]
  return specs.map((m) => relative(ROOT, join(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))))
}

function folderOf(path: string): string {
  const parts = path.split('/')
  return parts.length === 1 ? '.' : (parts[0] as string)
}

function floorOf(folder: string): number {
  return FLOORS.findIndex((floor) => floor.includes(folder))
}

type Graph = ReadonlyMap<string, readonly string[]>

/** Every cycle found by a depth-first walk, each as the path that closes it. */
function cyclesOf(graph: Graph): string[][] {
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[][] = []
  const visit = (node: string, stack: string[]): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next])
      else if (!state.has(next)) visit(next, stack)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node, [])
  return cycles
}

/** Imports that go up a floor or sideways to another folder on the same floor. */
function upwardOf(graph: Graph): string[] {
  const out: string[] = []
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = folderOf(from)
      const b = folderOf(to)
      if (a !== b && floorOf(b) >= floorOf(a)) out.push(`${from} -> ${to}`)
    }
  }
  return out
}

const graph: Graph = new Map(sources(ROOT).map((f) => [relative(ROOT, f), importsOf(f)]))

t.test('the checks can fail', async (t) => {
  const knot = new Map([
    ['proxy/a.ts', ['proxy/b.ts']],
    ['proxy/b.ts', ['proxy/c.ts']],
    ['proxy/c.ts', ['proxy/a.ts']],
  ])
  t.same(cyclesOf(knot), [['proxy/a.ts', 'proxy/b.ts', 'proxy/c.ts', 'proxy/a.ts']], 'a planted cycle is found')
  t.same(upwardOf(new Map([['oci/x.ts', ['proxy/y.ts']], ['upstream/z.ts', ['ledger/w.ts']], ['proxy/y.ts', ['oci/x.ts']]])), ['oci/x.ts -> proxy/y.ts', 'upstream/z.ts -> ledger/w.ts'], 'an upward and a sideways import are found, a downward one is not')
  t.ok(graph.size > 50 && [...graph.values()].some((targets) => targets.length > 5), `the source tree is read (${graph.size} files)`)
})

t.test('every folder of src/ has its floor', async (t) => {
  const folders = [...new Set([...graph.keys()].map(folderOf))].sort()
  t.same(
    folders.filter((f) => floorOf(f) === -1),
    [],
    `floors given to: ${folders.join(', ')}`,
  )
})

t.test('no import cycles in src/', async (t) => {
  t.same(cyclesOf(graph).map((c) => c.join(' -> ')), [])
})

t.test('imports point downward between the src/ layers', async (t) => {
  t.same(upwardOf(graph), [])
})

t.test('every relative import names a file that exists', async (t) => {
  const missing = [...graph].flatMap(([from, targets]) => targets.filter((to) => !graph.has(to)).map((to) => `${from} -> ${to}`))
  t.same(missing, [])
})
