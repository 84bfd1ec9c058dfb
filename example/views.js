// The shop's pages: layout, product list and cart, login, "my sessions", errors. Plain HTML, no client code.

import { cartSummary, MAX_QUANTITY, money, PRODUCTS } from './catalog.js'
import { html, raw } from './html.js'

const STYLE = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5d6677; --line: #dde2ea; --accent: #2f6fde; --bad: #c2402f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f7f9; }
header { display: flex; align-items: center; gap: 1.25rem; padding: .75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; margin-right: auto; }
header a { color: var(--ink); text-decoration: none; }
header a.active { color: var(--accent); font-weight: 600; }
header form { display: inline; }
main { max-width: 980px; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .75rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem; }
.card .price { color: var(--muted); margin: .25rem 0 .75rem; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 700; border-bottom: 0; }
button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
input { font: inherit; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; }
input.qty { width: 4.5rem; }
form.inline { display: inline-flex; gap: .4rem; align-items: center; margin: 0; }
label { display: block; margin: .5rem 0 .2rem; color: var(--muted); }
.notice { padding: .6rem .9rem; border-radius: 6px; background: #e8f0fe; margin: 0 0 1rem; }
.error { background: #fdecea; color: var(--bad); }
.muted { color: var(--muted); }
.badge { display: inline-block; white-space: nowrap; padding: .05rem .45rem; border-radius: 999px; background: #e3f4e8; color: #1f7a3d; font-size: .8rem; font-weight: 600; }
.ua { font-family: ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
.empty { color: var(--muted); background: #fff; border: 1px dashed var(--line); border-radius: 8px; padding: 1rem; }
`

/** The page frame. `user` is `{ name }` or undefined (admin pages pass `showUser: false`). */
export function layout({ title, nonce, user, active, showUser = true, head, body }) {
  const link = (href, label, key) =>
    html`<a href="${href}" class="${active === key ? 'active' : ''}">${label}</a>`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · tiered-session shop</title>
<style nonce="${nonce}">${raw(STYLE)}</style>
${head}
</head>
<body>
<header>
  <span class="brand">tiered-session shop</span>
  ${link('/', 'Shop', 'shop')}
  ${user && link('/account/sessions', 'My sessions', 'sessions')}
  ${link('/admin/tiers', 'Tiers', 'tiers')}
  <a href="/metrics">Metrics</a>
  ${
    showUser &&
    (user
      ? html`<span>Signed in as <b id="user-name">${user.name}</b></span>
  <form method="post" action="/logout"><button class="secondary" id="logout">Log out</button></form>`
      : html`<a id="login-link" href="/login">Log in</a>`)
  }
</header>
<main>
${body}
</main>
</body>
</html>`
}

/** The product list and the cart. */
export function shopPage({ nonce, user, cart }) {
  const { lines, count, total } = cartSummary(cart)
  const products = PRODUCTS.map(
    (p) => html`<div class="card">
  <div>${p.name}</div>
  <div class="price">${money(p.price)}</div>
  <form method="post" action="/cart/add" class="inline">
    <input type="hidden" name="sku" value="${p.sku}">
    <button id="add-${p.sku}">Add to cart</button>
  </form>
</div>`,
  )
  const rows = lines.map(
    ({ product, quantity, subtotal }) => html`<tr data-sku="${product.sku}">
  <td>${product.name}</td>
  <td>
    <form method="post" action="/cart/update" class="inline">
      <input type="hidden" name="sku" value="${product.sku}">
      <input class="qty" type="number" name="quantity" min="0" max="${MAX_QUANTITY}" value="${quantity}" aria-label="Quantity of ${product.name}">
      <button class="secondary">Update</button>
    </form>
  </td>
  <td class="num">${money(subtotal)}</td>
  <td>
    <form method="post" action="/cart/remove" class="inline">
      <input type="hidden" name="sku" value="${product.sku}">
      <button class="secondary">Remove</button>
    </form>
  </td>
</tr>`,
  )
  const cartTable =
    lines.length === 0
      ? html`<p class="empty" id="cart-empty">Your cart is empty.</p>`
      : html`<table id="cart">
  <thead><tr><th>Product</th><th>Quantity</th><th class="num">Subtotal</th><th></th></tr></thead>
  <tbody>${rows}</tbody>
  <tfoot><tr><td>Total (<span id="cart-count">${count}</span> items)</td><td></td><td class="num" id="cart-total">${money(total)}</td><td></td></tr></tfoot>
</table>`
  return layout({
    title: 'Shop',
    nonce,
    user,
    active: 'shop',
    body: html`<h1>Products</h1>
<div class="grid">${products}</div>
<h2>Cart</h2>
${cartTable}
${!user && html`<p class="muted">Your cart is kept when you <a href="/login">log in</a>.</p>`}`,
  })
}

/** The login form; `error` is shown above it, `login` refills the name field. */
export function loginPage({ nonce, error, login, next, demoUsers }) {
  return layout({
    title: 'Log in',
    nonce,
    active: 'login',
    body: html`<h1>Log in</h1>
${error && html`<p class="notice error" id="login-error">${error}</p>`}
<form method="post" action="/login" class="card" id="login-form">
  <input type="hidden" name="next" value="${next}">
  <label for="login">User name</label>
  <input id="login" name="login" autocomplete="username" required value="${login}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <p><button id="login-submit">Log in</button></p>
</form>
<p class="muted">Demo users: ${demoUsers.map((u, i) => html`${i > 0 && ', '}<code>${u.id}</code> / <code>${u.password}</code>`)}</p>`,
  })
}

function when(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—'
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/** The signed-in user's sessions, with "log out this device" per session and "log out everywhere else". */
export function sessionsPage({ nonce, user, sessions, ended }) {
  const others = sessions.filter((s) => !s.current).length
  const rows = sessions.map(
    (s) => html`<tr class="session${s.current ? ' current' : ''}">
  <td>${s.current ? html`<span class="badge">this browser</span>` : ''}</td>
  <td>${when(s.createdAt)}</td>
  <td>${when(s.lastSeenAt)}</td>
  <td>${when(s.expiresAt)}</td>
  <td class="ua">${s.userAgent || 'unknown'}</td>
  <td>${
    s.current
      ? ''
      : html`<form method="post" action="/account/sessions/logout-device"><input type="hidden" name="handle" value="${s.handle}"><button class="secondary logout-device">Log out this device</button></form>`
  }</td>
</tr>`,
  )
  return layout({
    title: 'My sessions',
    nonce,
    user,
    active: 'sessions',
    body: html`<h1>My sessions</h1>
${ended !== undefined && html`<p class="notice" id="ended">Logged out ${ended} other ${ended === 1 ? 'session' : 'sessions'}.</p>`}
<table id="sessions">
  <thead><tr><th></th><th>Signed in</th><th>Last seen</th><th>Expires</th><th>Browser</th><th></th></tr></thead>
  <tbody>${rows}</tbody>
</table>
<p class="muted">From <code>store.listByUser()</code>. "Last seen" is updated at most once a minute, so browsing does not cost a write per request.</p>
<form method="post" action="/account/sessions/logout-others">
  <button class="danger" id="logout-others"${others === 0 ? ' disabled' : ''}>Log out everywhere else (${others})</button>
</form>`,
  })
}

/** A short error page. Never the error's message: it may name internals. */
export function errorPage({ nonce, status, title }) {
  return layout({
    title,
    nonce,
    showUser: false,
    body: html`<h1>${status} · ${title}</h1><p><a href="/">Back to the shop</a></p>`,
  })
}
