// Demo users and password checks: scrypt hashes with a salt each, compared in constant time; an unknown
// name costs the same hash as a known one, so response times do not tell which names exist.

import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'

const KEY_BYTES = 32
/** Longer inputs are refused before hashing (scrypt of a huge string is a cheap way to burn CPU). */
const MAX_INPUT_LENGTH = 256

/** The seeded accounts. Only their hashes are kept; the passwords are printed on the login page. */
export const DEMO_USERS = [
  { id: 'alice', name: 'Alice', password: 'wonderland' },
  { id: 'bob', name: 'Bob', password: 'builder' },
]

function hashWithSalt(password, salt) {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** A user table: `verify(name, password)` resolves to `{ id, name }` or null. */
export function createUsers(seed = DEMO_USERS) {
  // NB: a Map, not an object: a login name such as "__proto__" or "constructor" must be just a miss.
  const users = new Map()
  for (const { id, name, password } of seed) {
    const salt = randomBytes(16)
    users.set(id, { id, name, salt, hash: scryptSync(password, salt, KEY_BYTES) })
  }
  const dummySalt = randomBytes(16)
  const dummyHash = scryptSync(randomBytes(16), dummySalt, KEY_BYTES)

  return {
    async verify(login, password) {
      if (typeof login !== 'string' || typeof password !== 'string') return null
      if (login.length > MAX_INPUT_LENGTH || password.length > MAX_INPUT_LENGTH) return null
      const user = users.get(login)
      const hash = await hashWithSalt(password, user?.salt ?? dummySalt)
      const match = timingSafeEqual(hash, user?.hash ?? dummyHash)
      return match && user ? { id: user.id, name: user.name } : null
    },
    nameOf(id) {
      return users.get(id)?.name
    },
  }
}
