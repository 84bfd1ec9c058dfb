// The example shop driven by a real browser (playwright-core + Debian's chromium-headless-shell) against
// real `node example/server.js` processes: login and cart, a restart on the same SQLite file, "log out
// everywhere else", two instances sharing one Redis, and the live /admin/tiers page under load.
// Screenshots of each step go to test-results/screenshots/ (UPDATE_DOCS_SCREENSHOTS=1: also docs/).

import { randomBytes } from 'node:crypto'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { freePort, useRedis } from '../helpers/redis-server.js'
import { makeTempDir } from '../helpers/temp-dir.js'
import { factOf, launchChromium, navigate, screenshot, textOf } from './browser.js'
import { type ExampleProcess, ensureBuilt, startExample } from './example-process.js'

const SECRET = randomBytes(32).toString('base64url')
/** A small budget, so the load button's few hundred sessions make the spiller work. */
const MEMORY_MAX_BYTES = 256 * 1024
const VIEWPORT = { width: 1200, height: 800 }

// The bits of the DOM that the in-page callbacks below use (the project's tsconfig has no DOM lib).
declare const document: {
  getElementById(
    id: string,
  ): { textContent: string | null; dataset: Record<string, string | undefined> } | null
}
declare const navigator: { userAgent: string }

interface TiersJson {
  maxBytes: number
  history: Array<{ memoryBytes: number }>
  load: { state: string; created: number }
}

async function logIn(page: Page, url: string, login: string, password: string): Promise<void> {
  await page.goto(`${url}/login`)
  await page.fill('#login', login)
  await page.fill('#password', password)
  await navigate(page, () => page.click('#login-submit'))
}

async function addToCart(page: Page, sku: string): Promise<void> {
  await navigate(page, () => page.click(`#add-${sku}`))
  await page.waitForSelector(`tr[data-sku="${sku}"]`)
}

async function sessionCookie(context: BrowserContext): Promise<string | undefined> {
  return (await context.cookies()).find((cookie) => cookie.name === 'connect.sid')?.value
}

describe('the example shop in a real browser', { timeout: 30_000 }, () => {
  const redis = useRedis()
  let browser: Browser
  const dir = makeTempDir('tiered-session-example')
  let port: number
  let shop: ExampleProcess
  let first: BrowserContext
  let page: Page
  const localEnv = () => ({
    PORT: String(port),
    SESSION_SECRET: SECRET,
    SESSION_DIR: dir.path,
    MEMORY_MAX_BYTES: String(MEMORY_MAX_BYTES),
  })

  beforeAll(async () => {
    // NB: the example imports 'tiered-session', i.e. dist/: build it when src/ is newer.
    const [, launched, free] = await Promise.all([ensureBuilt(), launchChromium(), freePort()])
    browser = launched
    port = free
    shop = await startExample(localEnv())
    first = await browser.newContext({ viewport: VIEWPORT })
    page = await first.newPage()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await shop?.stop()
    dir.remove()
  })

  it('1. logs in (keeping the cart), adds two items to the cart and sees the total; quantities change', async () => {
    await page.goto(shop.url)
    expect(await page.isVisible('#login-link')).toBe(true)
    expect(await page.isVisible('#cart-empty')).toBe(true)

    await addToCart(page, 'tea')
    const anonymousSid = await sessionCookie(first)
    expect(anonymousSid).toBeDefined()

    await logIn(page, shop.url, 'alice', 'not-her-password')
    expect(await textOf(page, '#login-error')).toBe('Wrong user name or password.')
    await logIn(page, shop.url, 'alice', 'wonderland')
    expect(await textOf(page, '#user-name')).toBe('Alice')
    // A new session id on login; the cart came along.
    expect(await sessionCookie(first)).not.toBe(anonymousSid)
    expect(await page.isVisible('tr[data-sku="tea"]')).toBe(true)

    await addToCart(page, 'mug')
    expect(await textOf(page, '#cart-count')).toBe('2')
    expect(await textOf(page, '#cart-total')).toBe('€20.50')

    // Change a quantity, then remove the line.
    await addToCart(page, 'honey')
    await page.fill('tr[data-sku="honey"] input[name="quantity"]', '3')
    await navigate(page, () => page.click('tr[data-sku="honey"] button:text("Update")'))
    expect(await textOf(page, '#cart-count')).toBe('5')
    expect(await textOf(page, '#cart-total')).toBe('€47.20')
    await navigate(page, () => page.click('tr[data-sku="honey"] button:text("Remove")'))
    expect(await page.isVisible('tr[data-sku="honey"]')).toBe(false)
    expect(await textOf(page, '#cart-count')).toBe('2')
    expect(await textOf(page, '#cart-total')).toBe('€20.50')
    await screenshot(page, '1-logged-in-cart.png', 'shop.png')
  })

  it('2. is still logged in with the same cart after a restart on the same SQLite file', async () => {
    const sid = await sessionCookie(first)
    expect(await shop.stop('SIGTERM')).toBe(0)
    expect(shop.output()).toMatch(/SIGTERM: closing\s+closed/)
    shop = await startExample(localEnv())

    await page.reload()
    expect(await textOf(page, '#user-name')).toBe('Alice')
    expect(await textOf(page, '#cart-count')).toBe('2')
    expect(await textOf(page, '#cart-total')).toBe('€20.50')
    expect(await sessionCookie(first)).toBe(sid)
    // The new process had nothing in memory: the session was read from SQLite and promoted.
    const stats = await (await page.request.get(`${shop.url}/admin/tiers.json`)).json()
    const promotions = stats.sections
      .flatMap((section: { facts: Array<{ key: string; raw: number }> }) => section.facts)
      .find((fact: { key: string }) => fact.key === 'promotions')
    expect(promotions.raw).toBeGreaterThanOrEqual(1)
    await screenshot(page, '2-after-restart.png')
  })

  it('3. "log out everywhere else" in a second browser logs the first one out on its next request', async () => {
    // NB: markup in the user agent must come out as text on "my sessions".
    const userAgent = 'SecondBrowser/1.0 <b id="injected">bold</b> & "quoted"'
    const second = await browser.newContext({ viewport: VIEWPORT, userAgent })
    onTestFinished(() => second.close())
    const other = await second.newPage()
    await logIn(other, shop.url, 'alice', 'wonderland')
    await other.goto(`${shop.url}/account/sessions`)
    expect(await other.locator('#sessions tbody tr').count()).toBe(2)
    expect(await textOf(other, '#sessions tr.current .ua')).toBe(userAgent)
    expect(await other.locator('#injected').count()).toBe(0)
    expect(await other.locator('#sessions .ua').allTextContents()).toContain(
      await page.evaluate(() => navigator.userAgent),
    )
    await screenshot(other, '3-my-sessions-before.png')

    await navigate(other, () => other.click('#logout-others'))
    expect(await textOf(other, '#ended')).toBe('Logged out 1 other session.')
    expect(await other.locator('#sessions tbody tr').count()).toBe(1)
    await screenshot(other, '3-my-sessions-after.png')

    await page.reload()
    expect(await page.isVisible('#login-link')).toBe(true)
    expect(await page.isVisible('#user-name')).toBe(false)
    expect(await page.isVisible('#cart-empty')).toBe(true)
    await screenshot(page, '3-first-browser-logged-out.png')
    await page.goto(`${shop.url}/account/sessions`)
    expect(new URL(page.url()).pathname).toBe('/login')

    await other.reload()
    expect(await textOf(other, '#user-name')).toBe('Alice')

    // "Log out this device": a third browser's session ends, and only it (sessions are named by handle).
    const third = await browser.newContext({ viewport: VIEWPORT, userAgent: 'ThirdBrowser/1.0' })
    onTestFinished(() => third.close())
    const thirdPage = await third.newPage()
    await logIn(thirdPage, shop.url, 'alice', 'wonderland')
    await other.goto(`${shop.url}/account/sessions`)
    expect(await other.locator('#sessions tbody tr').count()).toBe(2)
    expect(await other.locator('#sessions tr.current .logout-device').count()).toBe(0)
    expect(await textOf(other, '#sessions tr:not(.current) .ua')).toBe('ThirdBrowser/1.0')
    await screenshot(other, '3-log-out-this-device.png')
    await navigate(other, () => other.click('#sessions tr:not(.current) .logout-device'))
    expect(await textOf(other, '#ended')).toBe('Logged out 1 other session.')
    expect(await other.locator('#sessions tbody tr').count()).toBe(1)
    await thirdPage.reload()
    expect(await thirdPage.isVisible('#login-link')).toBe(true)
    await other.reload()
    expect(await textOf(other, '#user-name')).toBe('Alice')
  })

  it('4. in shared mode, logged in on one instance is logged in on the other, with the same cart', async () => {
    const [dirA, dirB] = [makeTempDir('tiered-session-example-a'), makeTempDir('tiered-session-example-b')]
    const [portA, portB] = [await freePort(), await freePort()]
    const env = (sessionDir: string, portOf: number) => ({
      PORT: String(portOf),
      SESSION_SECRET: SECRET,
      SESSION_DIR: sessionDir,
      REDIS_URL: redis.url,
    })
    const started = await Promise.allSettled([
      startExample(env(dirA.path, portA)),
      startExample(env(dirB.path, portB)),
    ])
    const instances = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    const context = await browser.newContext({ viewport: VIEWPORT })
    onTestFinished(async () => {
      await context.close()
      await Promise.all(instances.map((instance) => instance.stop()))
      dirA.remove()
      dirB.remove()
    })
    for (const result of started) if (result.status === 'rejected') throw result.reason
    const [a, b] = instances as [ExampleProcess, ExampleProcess]
    const tab = await context.newPage()

    await logIn(tab, a.url, 'bob', 'builder')
    await addToCart(tab, 'honey')
    await addToCart(tab, 'biscuits')
    expect(await textOf(tab, '#cart-total')).toBe('€12.10')
    await screenshot(tab, '4-instance-a.png')

    // Cookies are per host, not per port: the same browser session goes to the other instance.
    await tab.goto(b.url)
    expect(await textOf(tab, '#user-name')).toBe('Bob')
    expect(await textOf(tab, '#cart-count')).toBe('2')
    expect(await textOf(tab, '#cart-total')).toBe('€12.10')
    await addToCart(tab, 'tea')
    expect(await textOf(tab, '#cart-count')).toBe('3')
    await screenshot(tab, '4-instance-b.png')

    // Back on A, whose near cache held the old cart: B's write invalidated it.
    // NB: polled, since the invalidation travels by pub/sub beside B's response.
    await expect
      .poll(
        async () => {
          await tab.goto(a.url)
          return textOf(tab, '#cart-count')
        },
        { timeout: 5000, interval: 50 },
      )
      .toBe('3')
    expect(await textOf(tab, '#user-name')).toBe('Bob')

    await tab.goto(`${b.url}/admin/tiers`)
    expect(await textOf(tab, '#fact-redis')).toBe('connected')
    expect(await textOf(tab, '#fact-coherence')).toBe('live')
    await screenshot(tab, '4-admin-tiers-shared.png')
  })

  it('5. /admin/tiers shows the numbers change after the load button, memory staying in its budget', async () => {
    await page.goto(`${shop.url}/admin/tiers`)
    await page.waitForFunction(() => document.getElementById('live')?.textContent?.startsWith('live'))
    const before = {
      spills: await factOf(page, 'spills'),
      memory: await factOf(page, 'memory-entries'),
      disk: await factOf(page, 'disk-entries'),
      writes: await factOf(page, 'writes'),
    }
    expect(before.spills).toBe(0)

    await page.click('#load-button')
    const done = await page.waitForFunction(
      ({ spills }) => {
        const value = (key: string) => Number(document.getElementById(`fact-${key}`)?.dataset.value)
        const state = document.getElementById('load-status')?.dataset.state
        return state === 'done' && value('spills') > spills ? Number(value('spills')) : false
      },
      before,
      { timeout: 20_000 },
    )
    expect(await done.jsonValue()).toBeGreaterThan(0)
    expect(await textOf(page, '#load-status')).toMatch(/^Created \d+ sessions in [\d.]+ s/)
    expect(await factOf(page, 'disk-entries')).toBeGreaterThan(before.disk)
    expect(await factOf(page, 'writes')).toBeGreaterThan(before.writes)
    expect(await factOf(page, 'memory-entries')).not.toBe(before.memory)
    expect(await factOf(page, 'promotions')).toBeGreaterThan(0)

    // Memory stayed under its budget the whole time, as sampled for the chart.
    const tiers = (await (await page.request.get(`${shop.url}/admin/tiers.json`)).json()) as TiersJson
    expect(tiers.maxBytes).toBe(MEMORY_MAX_BYTES)
    expect(tiers.load.state).toBe('done')
    expect(Math.max(...tiers.history.map((point) => point.memoryBytes))).toBeLessThanOrEqual(MEMORY_MAX_BYTES)
    expect(Number(await page.getAttribute('#chart-data', 'data-points'))).toBeGreaterThan(5)
    expect(await page.locator('#chart-memory polyline').count()).toBe(1)

    const metrics = await page.request.get(`${shop.url}/metrics`)
    expect(metrics.headers()['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const spills = /^tiered_session_spills_total (\d+)$/m.exec(await metrics.text())
    expect(Number(spills?.[1])).toBeGreaterThan(0)
    await screenshot(page, '5-admin-tiers-after-load.png', 'admin-tiers.png')
  })
})
