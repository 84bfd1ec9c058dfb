// The example's configuration, read once from the environment and checked, so a typo fails at start with
// the name of the variable instead of on the first request.

import { randomBytes } from 'node:crypto'

const MIN_MEMORY_BYTES = 1024

function integer(env, name, fallback, min, max) {
  const text = env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`)
  }
  return value
}

/**
 * PORT (default 3000; 0 = any free port), SESSION_SECRET (random, with a warning, when absent),
 * SESSION_DIR (default ./.sessions), MEMORY_MAX_BYTES (default 64 MiB), REDIS_URL (shared mode).
 * Returns the configuration and the warnings to print.
 */
export function readConfig(env = process.env) {
  const warnings = []
  let secret = env.SESSION_SECRET ?? ''
  if (secret === '') {
    secret = randomBytes(32).toString('base64url')
    warnings.push(
      'SESSION_SECRET is not set: using a random secret, so every session ends when the server restarts.',
    )
  } else if (secret.length < 32) {
    warnings.push('SESSION_SECRET is shorter than 32 characters: use a long random string.')
  }
  const redisUrl = env.REDIS_URL ?? ''
  return {
    port: integer(env, 'PORT', 3000, 0, 65_535),
    secret,
    sessionDir: env.SESSION_DIR || './.sessions',
    maxBytes: integer(env, 'MEMORY_MAX_BYTES', 64 * 1024 * 1024, MIN_MEMORY_BYTES, Number.MAX_SAFE_INTEGER),
    redisUrl: redisUrl === '' ? undefined : redisUrl,
    warnings,
  }
}
