import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { buildImage, buildIndex, MT } from '../helpers/oci-builder.js'
import { spawnProxy } from '../helpers/proxy.js'
import { errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { registryFor } from '../helpers/fixture.js'

// Bounded before buffered: list bodies that arrive half and stall are read only under their
// client's writer slot and a budget of list bytes in memory (server.maxBufferedListBytes,
// 64 MiB, a quarter of it per client address). 120 connections each sending 4 MiB - 1 byte of
// a list once took the proxy from 88 to 575 MiB; now the proxy stays small and every other
// client is served. The proxy runs as the real CLI, so its own RSS is what is measured.
// Bounded in count and time; loopback only (Linux routes all of 127/8 there).

const MiB = 1 << 20
const LIST_BYTES = 4 * MiB
const RSS_LIMIT = 300 * MiB
/** The same 4 MiB - 1 bytes for every connection: the test's own memory stays small. */
const HALF_BODY = Buffer.alloc(LIST_BYTES - 1, 0x20)

interface Stalled {
  readonly socket: Socket
  /** The status line the proxy answered, '' while it holds the body. */
  answer(): string
  readonly sent: Promise<void>
}

/** A list PUT declaring 4 MiB that sends all but its last byte, from `from`. */
function stalledList(url: string, from: string, tag: string): Promise<Stalled> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress: from }, () => {
      let received = ''
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
      const head = `PUT /v2/team/flood/manifests/${tag} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: ${MT.ociIndex}\r\nContent-Length: ${LIST_BYTES}\r\n\r\n`
      socket.write(head)
      // Written, or cut by the proxy's refusal: either way this connection has done its part.
      const sent = new Promise<void>((done) => {
        socket.write(HALF_BODY, () => done())
        socket.once('close', () => done())
      })
      resolve({ socket, answer: () => received.split('\r\n', 1)[0] ?? '', sent })
    })
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

/**
 * Held: unanswered and still open. Refused: answered 429, or closed by the proxy (a refusal
 * that closes a connection with bytes still coming in can reset it before the client reads
 * the answer).
 */
function outcome(stalled: readonly Stalled[]): { held: number; refused: number } {
  const held = stalled.filter((s) => s.answer() === '' && !s.socket.destroyed).length
  const refused = stalled.filter((s) => s.answer() === 'HTTP/1.1 429 Too Many Requests' || (s.answer() === '' && s.socket.destroyed)).length
  return { held, refused }
}

async function flood(url: string, addresses: readonly string[], perAddress: number, prefix: string): Promise<Stalled[]> {
  const all: Stalled[] = []
  for (const from of addresses) for (let i = 0; i < perAddress; i++) all.push(await stalledList(url, from, `${prefix}-${from.split('.')[3]}-${i}`))
  // Bounded: a loaded machine moves 480 MiB over loopback in well under this.
  await Promise.race([Promise.all(all.map((s) => s.sent)), new Promise((r) => setTimeout(r, 60_000))])
  // The proxy has the bytes it took; answers to the refused ones are out.
  await new Promise((r) => setTimeout(r, 1_000))
  return all
}

t.test('120 half-sent 4 MiB list bodies: the proxy stays small and serves everyone else', async (t) => {
  const registry = await registryFor(t)
  // Stalled bodies must stay stalled for the whole test: the idle timeout is not what is tested.
  const proxy = await spawnProxy(['--upstream', registry.url, '--server-body-idle-timeout-ms', '300000'])
  t.teardown(() => proxy.stop())
  const before = proxy.peakRss()

  /** Another client (127.0.0.1): an image pushed and pulled, and optionally a list. */
  async function otherClient(t: Test, name: string, list: 'accepted' | 'busy'): Promise<void> {
    const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: `bound-${name}` })
    const started = Date.now()
    await pushImage(proxy.url, 'team/other', image, `${name}-amd64`)
    const pulled = await getManifest(proxy.url, 'team/other', `${name}-amd64`)
    t.equal(pulled.status, 200, `${name}: another client pushes an image (blobs and manifest) and pulls it back, in ${Date.now() - started} ms`)
    const layer = await fetch(`${proxy.url}/v2/team/other/blobs/${image.layers[0]!.digest}`)
    t.equal(Buffer.from(await layer.arrayBuffer()).equals(image.layers[0]!.bytes), true, `${name}: and its layer`)
    const res = await putManifest(proxy.url, 'team/other', name, buildIndex([image]).manifest)
    if (list === 'accepted') {
      t.equal(res.status, 201, `${name}: and pushes a list (one address holds at most a quarter of the budget)`)
      t.equal((await getManifest(registry.url, 'team/other', name)).status, 200, `${name}: which the registry holds`)
    } else {
      const errors = await errorsOf(res)
      t.equal(res.status, 429, `${name}: its list waits its turn while the budget is full`)
      t.equal(res.headers.get('retry-after'), '5')
      t.match(errors[0], { code: 'TOOMANYREQUESTS', message: /server\.maxBufferedListBytes/ })
    }
  }

  t.test('from one address: its writer slot and its quarter of the budget', async (t) => {
    const stalled = await flood(proxy.url, ['127.0.0.2'], 120, 'one')
    t.teardown(() => stalled.forEach((s) => s.socket.destroy()))
    const { held, refused } = outcome(stalled)
    t.ok(held <= 4, `${held} bodies held (a quarter of 64 MiB is four 4 MiB lists)`)
    t.equal(refused + held, 120, `the other ${refused} refused with 429 before their bodies were read`)
    await otherClient(t, 'one', 'accepted')
    t.ok(proxy.peakRss() < RSS_LIMIT, `peak RSS ${Math.round(proxy.peakRss() / MiB)} MiB (was ${Math.round(before / MiB)} MiB at start)`)
    stalled.forEach((s) => s.socket.destroy())
  })

  t.test('from eight addresses: the global bound', async (t) => {
    const addresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 3}`)
    const stalled = await flood(proxy.url, addresses, 15, 'many')
    t.teardown(() => stalled.forEach((s) => s.socket.destroy()))
    const { held, refused } = outcome(stalled)
    t.ok(held <= 16, `${held} bodies held (64 MiB is sixteen 4 MiB lists)`)
    t.equal(refused + held, 120, `the other ${refused} refused with 429`)
    await otherClient(t, 'many', 'busy')
    t.ok(proxy.peakRss() < RSS_LIMIT, `peak RSS ${Math.round(proxy.peakRss() / MiB)} MiB`)
    stalled.forEach((s) => s.socket.destroy())
    // Let go with their connections: the budget is whole again.
    await new Promise((r) => setTimeout(r, 500))
    await otherClient(t, 'after', 'accepted')
  })

  t.test('none of the stalled lists reached the registry', async (t) => {
    for (const tag of ['one-2-0', 'one-2-119', 'many-3-0', 'many-10-14']) t.equal((await getManifest(registry.url, 'team/flood', tag)).status, 404, tag)
  })
})
