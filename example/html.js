// HTML by tagged template: every interpolated value is escaped unless it is itself the result of `html`
// (or `raw`), so user-controlled text (names, user agents, query strings) can never become markup.

const kHtml = Symbol('html')

/** Escapes the five characters that matter in HTML text and quoted attribute values. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** Marks trusted markup (our own templates only) so `html` does not escape it again. */
export function raw(markup) {
  return { [kHtml]: String(markup) }
}

function render(value) {
  if (value === null || value === undefined || value === false) return ''
  if (Array.isArray(value)) return value.map(render).join('')
  if (typeof value === 'object' && kHtml in value) return value[kHtml]
  return escapeHtml(value)
}

/** `html\`<p>${name}</p>\``: interpolations escaped, arrays joined, null/undefined/false omitted. */
export function html(strings, ...values) {
  let out = strings[0]
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]
  return raw(out)
}

/** The markup as a string, to send. */
export function renderHtml(markup) {
  return render(markup)
}
