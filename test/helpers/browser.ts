import { mkdirSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { accessSync, constants } from 'node:fs'
import { ROOT } from './root.js'
import { type Browser, chromium } from 'playwright-core'

// A real headless browser: Debian's chromium, driven over CDP by playwright-core (which
// brings no browser of its own). Playwright starts it with a fresh temporary profile
// (--user-data-dir) of its own each launch.

export const CHROMIUM_PACKAGE = 'apt-get install -y chromium'

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

/** The chromium on PATH (or CHROMIUM_BIN); a missing one fails with the package to install. */
export function chromiumPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const given = env['CHROMIUM_BIN']
  const candidates = given !== undefined ? [given] : (env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'chromium'))
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK)
      return c
    } catch {
      // not here
    }
  }
  throw new Error(`this test needs a headless browser, and "chromium" is not installed: ${CHROMIUM_PACKAGE}`)
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, chromiumSandbox: false, args: FLAGS, timeout: 60_000 })
}


/** Where screenshots go: beside tap's own output in .tap/ (git-ignored). */
export function screenshotPath(name: string): string {
  const dir = join(ROOT, '.tap/screenshots')
  mkdirSync(dir, { recursive: true })
  return join(dir, name)
}
