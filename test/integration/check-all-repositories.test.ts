import { Writable } from 'node:stream'
import t from 'tap'
import { type CheckIo, runCheck } from '../../src/check-command.js'
import { buildImage, buildIndex, MT } from '../helpers/oci-builder.js'
import { json } from '../helpers/real-world.js'
import { pushImage, putManifest } from '../helpers/registry-http.js'
import { registryFor } from '../helpers/fixture.js'

// `check --all-repositories`: lists broken straight at the registry (a layer deleted, garbage
// collection with --delete-untagged, a mislabelled list) are found across the whole catalog.

async function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const sink = (write: (s: string) => void) => new Writable({ write: (chunk: Buffer, _enc, done) => (write(chunk.toString()), done()) })
  const io: CheckIo = { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), env: { ...process.env }, readStdin: () => '' }
  const code = await runCheck(args, io)
  return { code, stdout, stderr }
}

t.test('check --all-repositories', async (t) => {
  const registry = await registryFor(t)
  const host = new URL(registry.url).host
  const image = (seed: string, architecture: string) => buildImage({ platform: { os: 'linux', architecture }, seed })

  // Children pushed by digest only, then garbage-collected with --delete-untagged (distribution #3004);
  // first, as it removes every untagged child of every repository.
  const gc = [image('sweep-gc', 'amd64'), image('sweep-gc', 'arm64')]
  for (const i of gc) await pushImage(registry.url, 'team/gc', i)
  t.equal((await putManifest(registry.url, 'team/gc', '1.0', buildIndex(gc).manifest)).status, 201)
  await registry.garbageCollect({ deleteUntagged: true })

  // Sound: a list and an image tag (skipped: not a list).
  const ok = [image('sweep-ok', 'amd64'), image('sweep-ok', 'arm64')]
  for (const i of ok) await pushImage(registry.url, 'team/ok', i, i.platform.architecture)
  t.equal((await putManifest(registry.url, 'team/ok', '1.0', buildIndex(ok).manifest)).status, 201)

  // A child's layer deleted straight at the registry.
  const layerGone = [image('sweep-layer', 'amd64'), image('sweep-layer', 'arm64')]
  for (const i of layerGone) await pushImage(registry.url, 'team/layer', i)
  t.equal((await putManifest(registry.url, 'team/layer', '1.0', buildIndex(layerGone).manifest)).status, 201)
  t.equal((await fetch(`${registry.url}/v2/team/layer/blobs/${layerGone[1]!.layers[0]!.digest}`, { method: 'DELETE' })).status, 202)

  // Swapped labels.
  const swapped = [image('sweep-swap', 'amd64'), image('sweep-swap', 'arm64')]
  for (const i of swapped) await pushImage(registry.url, 'team/swapped', i)
  const mislabelled = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...swapped[0]!.descriptor, platform: { os: 'linux', architecture: 'arm64' } }, { ...swapped[1]!.descriptor, platform: { os: 'linux', architecture: 'amd64' } }] }, MT.ociIndex)
  t.equal((await putManifest(registry.url, 'team/swapped', '1.0', mislabelled)).status, 201)


  const text = await check(['--all-repositories', host])
  t.equal(text.code, 1, text.stderr)
  t.match(text.stdout, /team\/layer:1\.0 .*BROKEN/)
  t.match(text.stdout, /team\/swapped:1\.0 .*BROKEN/)
  t.match(text.stdout, 'entry says linux/arm64, the image is linux/amd64')
  t.match(text.stdout, /team\/gc:1\.0 .*BROKEN/)
  t.notMatch(text.stdout, 'team/ok:1.0', 'sound lists are only counted')
  t.match(text.stdout, /4 repositories, 4 lists checked: 1 sound, 3 broken, 0 not checked \(2 image tags skipped\)/)

  const machine = await check(['--all-repositories', '--json', host])
  t.equal(machine.code, 1)
  const doc = JSON.parse(machine.stdout) as { repositories: number; lists: number; broken: number; results: { repository: string; status: string }[] }
  t.match(doc, { repositories: 4, lists: 4, broken: 3 })
  t.same(doc.results.filter((r) => r.status === 'broken').map((r) => r.repository).sort(), ['team/gc', 'team/layer', 'team/swapped'])

  t.equal((await check(['--all-repositories', `${host}/team/ok`])).code, 2, 'a registry, not a repository')
})
