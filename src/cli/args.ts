// Flags of one command, parsed with node:util's parseArgs (no dependency): unknown flags, missing values and
// missing required flags are a CliError naming them.

import { parseArgs } from 'node:util'
import { CliError } from './cli-error.js'

/** One flag: a string (`--db PATH`) or a boolean (`--json`). */
export interface FlagSpec {
  readonly type: 'string' | 'boolean'
  /** What it takes, for --help: `PATH`, `URL`. */
  readonly value?: string
  readonly help: string
  readonly default?: string
}

/** A command: its name, what it does, its flags. */
export interface CommandSpec {
  readonly name: string
  readonly summary: string
  readonly usage: string
  readonly flags: Readonly<Record<string, FlagSpec>>
  /** The one positional argument the command takes (`destroy HANDLE`), kept in the values under `name`. */
  readonly positional?: { readonly name: string; readonly value: string }
}

/** A session handle: 22 characters of base64url, so it may start with '-' (even '--'). */
const HANDLE_SHAPED = /^[A-Za-z0-9_-]{22}$/

/**
 * `argv` made safe for parseArgs when values start with a dash (handles do, 1 in 32): a string flag takes the
 * next token as its value whatever it looks like (`--except -Xy…`), and a token that is no known flag but
 * starts with '-' is a positional (`destroy -Xy…`), passed after `--`.
 */
function dashSafe(spec: CommandSpec, argv: readonly string[]): string[] {
  const out: string[] = []
  const positionals: string[] = []
  const flagOf = (token: string) =>
    token.startsWith('--') && !HANDLE_SHAPED.test(token) ? token.slice(2).split('=')[0] : undefined
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string
    const name = flagOf(token)
    const flag = name === undefined ? undefined : spec.flags[name]
    if (flag?.type === 'string' && !token.includes('=') && i + 1 < argv.length) {
      out.push(`${token}=${argv[++i]}`)
    } else if (name === undefined && token.startsWith('-') && token !== '-h' && token.length > 1) {
      positionals.push(token)
    } else {
      out.push(token)
    }
  }
  return positionals.length === 0 ? out : [...out, '--', ...positionals]
}

/** The flags of `argv` for `spec`; `--help` is always there. Throws CliError (exit 2) on a bad flag. */
export function parseFlags(spec: CommandSpec, argv: readonly string[]): Record<string, string | boolean> {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } }
  for (const [name, flag] of Object.entries(spec.flags)) options[name] = { type: flag.type }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] }
  try {
    parsed = parseArgs({
      args: dashSafe(spec, argv),
      options,
      allowPositionals: true,
      strict: true,
    }) as typeof parsed
  } catch (error) {
    // NB: parseArgs says "Unknown option '--x'" or "Option '--db <value>' argument missing": one line already.
    const first = String((error as Error).message).split(/\n|\. /)[0]
    throw new CliError(`${first} (see: tiered-session ${spec.name} --help)`, 2)
  }
  const positional = spec.positional
  const extra = parsed.positionals.slice(positional === undefined ? 0 : 1)
  if (extra.length > 0)
    throw new CliError(`unexpected argument '${extra[0]}' (see: tiered-session ${spec.name} --help)`, 2)
  const values: Record<string, string | boolean> = {}
  const first = parsed.positionals[0]
  if (positional !== undefined && first !== undefined) values[positional.name] = first
  for (const [name, flag] of Object.entries(spec.flags)) {
    const value = parsed.values[name] ?? flag.default
    if (value !== undefined) values[name] = value
  }
  if (parsed.values.help === true) values.help = true
  return values
}

/** The --help text of a command. */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = `  --${name}${flag.value === undefined ? '' : ` ${flag.value}`}`
    const def = flag.default === undefined ? '' : ` (default: ${flag.default})`
    return `${left.padEnd(28)}${flag.help}${def}`
  })
  return [
    `Usage: ${spec.usage}`,
    '',
    spec.summary,
    '',
    'Options:',
    ...rows,
    `${'  --help'.padEnd(28)}this text`,
    '',
  ].join('\n')
}

/** A required string flag, or a CliError naming it. */
export function required(values: Record<string, string | boolean>, name: string, spec: CommandSpec): string {
  const value = values[name]
  if (typeof value !== 'string' || value === '')
    throw new CliError(`--${name} is required (see: tiered-session ${spec.name} --help)`, 2)
  return value
}

/** `--json`, which every command takes. */
export const JSON_FLAG: FlagSpec = { type: 'boolean', help: 'print the counts as one JSON object' }

/** `--from`, which must name `store` (the one store a command reads from), or a CliError. */
export function requireFrom(
  values: Record<string, string | boolean>,
  store: string,
  spec: CommandSpec,
): void {
  const from = required(values, 'from', spec)
  if (from !== store) throw new CliError(`--from must be ${store}, not '${from}'`, 2)
}

/**
 * `--db PATH`, `--redis URL`, `--prefix P` and `--plain-ids`: the store a command works on (see open-store.ts).
 */
export const STORE_FLAGS: Readonly<Record<'db' | 'redis' | 'prefix' | 'plain-ids', FlagSpec>> = {
  db: { type: 'string', value: 'PATH', help: 'the SQLite file of a store in local mode' },
  redis: { type: 'string', value: 'URL', help: 'the Redis of a store in shared mode' },
  prefix: { type: 'string', value: 'P', help: 'the key prefix in Redis', default: 'sess:' },
  'plain-ids': {
    type: 'boolean',
    help: 'the apps run with hashIds: false (Redis, or a new --db file; an existing file says itself)',
  },
}

/** A whole number flag of at least `min`, or a CliError naming it. */
export function count(values: Record<string, string | boolean>, name: string, min: number): number {
  const text = values[name]
  const value = Number(text)
  if (typeof text !== 'string' || !Number.isInteger(value) || value < min)
    throw new CliError(`--${name} must be a whole number >= ${min}`, 2)
  return value
}
