import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { TokenAuthorizer } from '../../src/upstream/token-auth.js'

// The token flow's failures are the token server's, said as such; and the caller's deadline
// bounds the token request too (a check's time budget is not stretched by 15 s of waiting).

t.test("a token server that does not answer is cut off by the caller's deadline, and named", async (t) => {
  const server = createServer(() => undefined) // takes the request, never answers
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
  const started = performance.now()
  const answer = await new TokenAuthorizer().authorize(`Bearer realm="${realm}",service="registry"`, { username: 'ci', password: 'pw' }, AbortSignal.timeout(300))
  t.same(answer, { failed: `the token server ${new URL(realm).origin} did not answer within the time limit` })
  t.ok(performance.now() - started < 10_000, 'returned at the deadline, not after the 15 s token timeout')
})

t.test('what a token server answers', async (t) => {
  let status = 200
  let body = '{"token":"abc","expires_in":300}'
  const server = createServer((_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(body))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const challenge = `Bearer realm="${origin}/token",service="registry"`
  t.same(await new TokenAuthorizer().authorize(challenge, {}), { value: 'Bearer abc' }, 'a token')
  status = 401
  t.same(await new TokenAuthorizer().authorize(challenge, { username: 'ci', password: 'wrong' }), { unanswered: true }, "refused credentials: the registry's 401 stands")
  status = 503
  t.same(await new TokenAuthorizer().authorize(challenge, {}), { failed: `the token server ${origin} answered 503` })
  status = 200
  body = '{}'
  t.same(await new TokenAuthorizer().authorize(challenge, {}), { failed: `the token server ${origin} answered 200 without a token` })
  t.same(await new TokenAuthorizer().authorize('Bearer realm="not a url"', {}), { failed: 'the registry named a token server that is not a URL (not a url)' })
})
