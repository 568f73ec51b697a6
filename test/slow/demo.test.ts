import { createServer, type Server } from 'node:net'
import t from 'tap'
import { requireTool, run } from '../helpers/tools.js'

// npm run demo, as a newcomer runs it: beside a proxy already started by scripts/run-local.sh
// (ports 5001 and 9464 taken), and with a proxy that cannot start.

function hold(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(undefined))
    s.listen(port, '127.0.0.1', () => resolve(s))
  })
}

t.test('the demo runs beside a proxy holding 5001 and 9464, and stops with the proxy’s own error when it cannot start', async (t) => {
  requireTool('docker-registry', 'apt-get install -y docker-registry')
  requireTool('docker', 'install the docker CLI (docker.io)')
  requireTool('skopeo', 'apt-get install -y skopeo')
  // Whoever holds them (this test, or a proxy already running on the machine), they are taken.
  const held = (await Promise.all([hold(5001), hold(9464)])).filter((s): s is Server => s !== undefined)
  t.teardown(() => held.forEach((s) => s.close()))

  const demo = await run('bash', ['scripts/demo.sh'], { timeoutMs: 180_000 })
  t.equal(demo.code, 0, `the demo completes (${demo.stderr.slice(-400)})`)
  t.match(demo.stdout, '== Through manifest-guard')
  t.match(demo.stdout + demo.stderr, 'manifest blob unknown: stale child', 'docker prints the explanation through the proxy')
  t.match(demo.stdout, '(exit 0: the list was accepted)', 'and straight to the registry the stale list is taken')

  const broken = await run('bash', ['scripts/demo.sh'], { env: { ...process.env, MANIFEST_GUARD_VALIDATION_MODE: 'sometimes' }, timeoutMs: 60_000 })
  t.not(broken.code, 0, 'a proxy that cannot start stops the demo')
  t.match(broken.stderr, 'demo: manifest-guard did not start (exit 2)')
  t.match(broken.stderr, 'validation.mode', "with the proxy's own error")
  t.notMatch(broken.stdout + broken.stderr, /connection refused/i, 'not a client tool failing later')
})
