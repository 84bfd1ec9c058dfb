// The products and the cart held in the session: `session.cart` maps a product's sku to a quantity.

/** Prices in cents. */
export const PRODUCTS = [
  { sku: 'tea', name: 'Green tea, 100 g', price: 650 },
  { sku: 'mug', name: 'Stoneware mug', price: 1400 },
  { sku: 'honey', name: 'Forest honey, 250 g', price: 890 },
  { sku: 'biscuits', name: 'Oat biscuits', price: 320 },
]
export const MAX_QUANTITY = 99

const bySku = new Map(PRODUCTS.map((product) => [product.sku, product]))

/** The product with this sku, or undefined (a Map look-up: a form value like "__proto__" is a miss). */
export function productOf(sku) {
  return typeof sku === 'string' ? bySku.get(sku) : undefined
}

/** Formats cents as euros. */
export function money(cents) {
  return new Intl.NumberFormat('en-IE', { style: 'currency', currency: 'EUR' }).format(cents / 100)
}

/** The cart's lines (known products only, in catalog order), item count and total in cents. */
export function cartSummary(cart) {
  const lines = []
  let count = 0
  let total = 0
  for (const product of PRODUCTS) {
    const quantity = cart && Object.hasOwn(cart, product.sku) ? cart[product.sku] : 0
    if (!Number.isInteger(quantity) || quantity <= 0) continue
    lines.push({ product, quantity, subtotal: quantity * product.price })
    count += quantity
    total += quantity * product.price
  }
  return { lines, count, total }
}

/** Parses a quantity from a form: an integer 0..MAX_QUANTITY, else undefined. */
export function parseQuantity(text) {
  if (typeof text !== 'string' || !/^\d{1,3}$/.test(text)) return undefined
  const quantity = Number(text)
  return quantity <= MAX_QUANTITY ? quantity : undefined
}
