import t from 'tap'
import { statSync } from 'node:fs'
import { CHROMIUM_PACKAGE, chromiumPath, launchChromium, screenshotPath } from '../helpers/browser.js'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { basic, pushChildren, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The decisions page (GET /_guard/ on the admin listener) in a real headless chromium: the
// browser answers the Basic challenge with the admin token, the filters work as a plain form,
// and markup smuggled in through a user name and a platform stays text (no script runs, no
// element appears, the CSP reports nothing). A screenshot goes to .tap/screenshots/.

const TOKEN = 'page-admin-token-5c1e'
/** Client-controlled text that would run if the page did not escape it. */
const XSS_USER = '<img src=x onerror="window.__xss=1">'
const XSS_OS = '<script>window.__xss=2</script>'
const XSS_ARCH = '"><svg onload="window.__xss=3">'

t.test('a missing chromium fails and names the package to install', async (t) => {
  t.throws(() => chromiumPath({ PATH: '/nonexistent' }), { message: new RegExp(CHROMIUM_PACKAGE.replace(/[-/]/g, '\\$&')) })
})

t.test('the decisions page in headless chromium', async (t) => {
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { admin: { token: TOKEN } })

  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'page' })
  const hostile = buildImage({ platform: { os: XSS_OS, architecture: XSS_ARCH }, seed: 'page-xss' })
  await pushChildren(proxy.url, 'team/app', buildIndex([amd]))
  t.equal((await putManifest(proxy.url, 'team/app', 'good', buildIndex([amd]).manifest)).status, 201)
  t.equal((await putManifest(proxy.url, 'team/app', 'bad', buildIndex([amd, hostile]).manifest, basic(XSS_USER, 'pw'))).status, 400)
  const pageUrl = `${proxy.adminUrl}/_guard/`

  t.test('without the token: 401 and a Basic challenge, so the browser asks', async (t) => {
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const answers: { status: number; challenge: string | undefined }[] = []
    page.on('response', (r) => answers.push({ status: r.status(), challenge: r.headers()['www-authenticate'] }))
    // A person would see the browser's password prompt; headless chromium has none and
    // cancels, which Playwright reports as this error.
    await t.rejects(page.goto(pageUrl), /ERR_INVALID_AUTH_CREDENTIALS/)
    t.match(answers, [{ status: 401, challenge: /Basic realm="manifest-guard admin"/ }])
  })

  t.test('a wrong token: 401, the error body and nothing of the decisions', async (t) => {
    const context = await browser.newContext({ httpCredentials: { username: 'oncall', password: 'not-the-token' } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const res = await page.goto(pageUrl)
    t.equal(res?.status(), 401)
    const text = await page.locator('body').innerText()
    t.match(text, '"code":"UNAUTHORIZED"')
    t.notMatch(text, 'team/app')
  })

  t.test('with the token as the Basic password', async (t) => {
    const context = await browser.newContext({ httpCredentials: { username: 'oncall', password: TOKEN }, viewport: { width: 1400, height: 700 } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const dialogs: string[] = []
    const problems: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    page.on('pageerror', (e) => problems.push(e.message))
    page.on('console', (m) => problems.push(m.text()))
    const res = await page.goto(pageUrl)
    t.equal(res?.status(), 200)
    t.match(res?.headers()['content-security-policy'], /default-src 'none'/)

    const rows = page.locator('tbody tr')
    t.equal(await rows.count(), 2, 'both decisions, newest first')
    const first = rows.nth(0)
    const cells = await first.locator('td').allInnerTexts()
    t.match(cells[1], 'team/app:bad')
    t.match(cells[2], 'rejected')
    t.match(cells[3], 'never-pushed')
    t.match(cells[4], XSS_USER, 'the user name shows as the text it is')
    t.match(cells[5], XSS_OS, 'the message names the platform as text')
    t.match(cells[5], /manifest-guard request [0-9a-f]+/, 'the message the client was answered')
    t.match(await rows.nth(1).innerText(), /team\/app:good\s+accepted/)

    t.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined, 'no injected script ran')
    t.equal(await page.locator('table img, table script, table svg').count(), 0, 'no injected element exists')
    t.same(dialogs, [])
    t.same(problems, [], 'no script error and no CSP violation')
    const badge = await page.locator('.result.rejected').evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el).backgroundColor)
    t.equal(badge, 'rgb(255, 235, 233)', "the page's own style sheet is allowed by its CSP hash")

    const shot = screenshotPath('decisions-page.png')
    await page.screenshot({ path: shot, fullPage: true })
    t.ok(statSync(shot).size > 10_000, 'screenshot written')
    t.comment(`screenshot: ${shot}`)

    await page.selectOption('select[name=result]', 'accepted')
    await Promise.all([page.waitForURL(/result=accepted/), page.click('button[type=submit]')])
    t.equal(await rows.count(), 1, 'filtered by result')
    t.match(await rows.nth(0).innerText(), 'team/app:good')
    t.equal(await page.locator('select[name=result]').inputValue(), 'accepted', 'the filter stays selected')

    await page.fill('input[name=repository]', 'team/other')
    await page.selectOption('select[name=result]', '')
    await Promise.all([page.waitForURL(/repository=team%2Fother/), page.click('button[type=submit]')])
    t.equal(await rows.count(), 0, 'filtered by repository')
    t.match(await page.locator('p.empty').innerText(), 'No decision matches')

    await page.fill('input[name=repository]', 'team/app')
    await Promise.all([page.waitForURL(/repository=team%2Fapp/), page.click('button[type=submit]')])
    t.equal(await rows.count(), 2)
  })

  t.test('not on the proxy port', async (t) => {
    t.equal((await fetch(`${proxy.url}/_guard/`)).status, 404)
  })
})
