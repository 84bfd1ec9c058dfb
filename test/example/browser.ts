// Playwright helpers for the example's browser test: Debian's headless Chromium, form submissions that
// await the page they lead to, screenshots as test artifacts (and, on request, for the README).

import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { ROOT } from './example-process.js'

/** Debian's `chromium-headless-shell` package; CHROMIUM_PATH overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium-headless-shell'
export const SCREENSHOTS_DIR = join(ROOT, 'test-results', 'screenshots')
/** `UPDATE_DOCS_SCREENSHOTS=1` also copies the README's screenshots into docs/. */
const DOCS_DIR = process.env.UPDATE_DOCS_SCREENSHOTS === '1' ? join(ROOT, 'docs') : undefined

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `${CHROMIUM_PATH} not found: apt-get install -y --no-install-recommends chromium-headless-shell ` +
        '(or set CHROMIUM_PATH to a Chromium headless shell)',
    )
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] })
}

/** Runs `action` (a click that submits a form or follows a link) and resolves once the new page has loaded. */
export async function navigate(page: Page, action: () => Promise<unknown>): Promise<void> {
  const navigated = page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame())
  await action()
  await navigated
  await page.waitForLoadState('load')
}

/** Saves a full-page screenshot under test-results/screenshots/, and as docs/<docsName> when asked to. */
export async function screenshot(page: Page, name: string, docsName?: string): Promise<void> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true })
  const path = join(SCREENSHOTS_DIR, name)
  await page.screenshot({ path, fullPage: true })
  if (DOCS_DIR !== undefined && docsName !== undefined) {
    mkdirSync(DOCS_DIR, { recursive: true })
    copyFileSync(path, join(DOCS_DIR, docsName))
  }
}

/** The text of the element, trimmed; throws when it is not on the page. */
export async function textOf(page: Page, selector: string): Promise<string> {
  const text = await page.textContent(selector, { timeout: 5000 })
  if (text === null) throw new Error(`${selector} has no text`)
  return text.trim()
}

/** A number the admin page keeps in `data-value` of `#fact-<key>`. */
export async function factOf(page: Page, key: string): Promise<number> {
  const value = await page.getAttribute(`#fact-${key}`, 'data-value', { timeout: 5000 })
  if (value === null || value === '') throw new Error(`#fact-${key} has no numeric value`)
  return Number(value)
}
