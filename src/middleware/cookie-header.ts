// Reads the session cookie out of a request's Cookie header: exactly one well-formed occurrence, or none.

/** Longest cookie value accepted, in characters; a longer one is treated as absent. */
export const MAX_COOKIE_VALUE_LENGTH = 4096

/**
 * The raw (URL-decoded) value of cookie `name`, or undefined when it is absent, appears more than once,
 * is oversized, or cannot be decoded. Never throws.
 */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const text = Array.isArray(header) ? header.join('; ') : header
  let found: string | undefined
  let count = 0
  for (const part of text.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() !== name) continue
    count++
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    found = value
  }
  // NB: two cookies of the same name (e.g. set for two paths) are ambiguous: neither is trusted.
  if (count !== 1 || found === undefined || found.length > MAX_COOKIE_VALUE_LENGTH) return undefined
  try {
    return decodeURIComponent(found)
  } catch {
    return undefined
  }
}
