// Session shapes shared by every benchmark: ~1 KiB of JSON shaped like a logged-in shopper (login + cart),
// generated deterministically from an index with a seeded PRNG, so a read-back can be checked against a
// re-generated value without keeping a million objects alive (which would pollute the heap figures).

export const DAY_MS = 86_400_000
export const MiB = 1024 * 1024

/** mulberry32: a small, fast, seeded PRNG in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

export function token(r, n) {
  let s = ''
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * 64)]
  return s
}

/** One instant per process, so sessionFor(i) is the same object every time it is called in that process. */
export const PROCESS_NOW = Date.now()

/**
 * The session with index i: 932-1142 bytes of JSON (mean ~1038), cookie expiring one day after `now`.
 * JSON-pure (cookie.expires is an ISO string, as express-session stores it), so it round-trips exactly.
 */
export function sessionFor(i, now = PROCESS_NOW) {
  const r = rng(Math.imul(i + 1, 2654435761))
  const items = 3 + Math.floor(r() * 3)
  const cart = []
  for (let k = 0; k < items; k++) {
    cart.push({
      sku: `SKU-${token(r, 8).toUpperCase()}`,
      name: `Product ${Math.floor(r() * 100000)} ${token(r, 12)}`,
      qty: 1 + Math.floor(r() * 4),
      price: Math.round(r() * 20000) / 100,
      currency: 'EUR',
    })
  }
  const loginAt = now - Math.floor(r() * 3_600_000)
  return {
    cookie: {
      originalMaxAge: DAY_MS,
      expires: new Date(now + DAY_MS).toISOString(),
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
      path: '/',
    },
    userId: `user-${i}`,
    csrfToken: token(r, 43),
    cart,
    createdAt: loginAt,
    lastSeenAt: loginAt + Math.floor(r() * 600_000),
    locale: 'en-GB',
    flash: {},
    returnTo: `/checkout/${token(r, 10)}`,
    ip: `203.0.113.${Math.floor(r() * 255)}`,
    authMethod: 'password',
    mfa: r() < 0.5,
    shipping: {
      country: 'GB',
      postcode: `SW${1 + Math.floor(r() * 20)} ${token(r, 3).toUpperCase()}`,
      method: 'standard',
    },
    recentlyViewed: [0, 1, 2, 3].map(() => `SKU-${token(r, 8).toUpperCase()}`),
    ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  }
}

/** A session id for index i (32 visible ASCII characters, like express-session's 24 random bytes). */
export const sidFor = (i, tag = 'b') =>
  `${tag}-${i.toString(36).padStart(7, '0')}-${(Math.imul(i, 40503) >>> 0).toString(36).padStart(7, '0')}-sess`

/** Payload bytes exactly as a store serializes them (UTF-8 of the JSON text). */
export const bytesOf = (session) => Buffer.byteLength(JSON.stringify(session), 'utf8')

/** Mean serialized size of sessionFor(0..n-1). */
export function meanSessionBytes(n = 1000) {
  let sum = 0
  for (let i = 0; i < n; i++) sum += bytesOf(sessionFor(i))
  return sum / n
}

/** The session as a request hands it over for a write: cookie.expires = now + 1 day, lastSeenAt = now. */
export function refreshed(base) {
  const now = Date.now()
  return {
    ...base,
    lastSeenAt: now,
    cookie: { ...base.cookie, expires: new Date(now + DAY_MS).toISOString() },
  }
}

/** The cart the HTTP apps put into a session at login: with userId, counter and the cookie, ~1 KiB of JSON. */
export function cartFor(user) {
  const items = []
  for (let i = 0; i < 6; i++) {
    items.push({
      sku: `SKU-${String(user * 7 + i * 13).padStart(8, '0')}`,
      name: `Product ${user}-${i} with a reasonably descriptive name`,
      qty: 1 + ((user + i) % 4),
      priceCents: 499 + ((user * 31 + i * 17) % 9000),
      addedAt: 1_700_000_000_000 + user * 1000 + i,
    })
  }
  return items
}

export function shuffle(array, r) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    const t = array[i]
    array[i] = array[j]
    array[j] = t
  }
  return array
}
