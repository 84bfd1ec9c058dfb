#!/usr/bin/env node
// bin `tiered-session`: the command line tool. Each command prints a table for a person (or --json for a
// script) and exits non-zero with one clear line on bad input.

import { helpText } from './args.js'
import { CliError } from './cli-error.js'
import { backup, backupSpec } from './commands/backup.js'
import { destroy, destroySpec } from './commands/destroy.js'
import { exportSessions, exportSpec } from './commands/export.js'
import { importSessions, importSpec } from './commands/import.js'
import { logout, logoutSpec } from './commands/logout.js'
import { migrate, migrateSpec } from './commands/migrate.js'
import { rekey, rekeySpec } from './commands/rekey.js'
import { sessions, sessionsSpec } from './commands/sessions.js'
import { stats, statsSpec } from './commands/stats.js'
import { sweep, sweepSpec } from './commands/sweep.js'

const COMMANDS = {
  stats: { spec: statsSpec, run: stats },
  sessions: { spec: sessionsSpec, run: sessions },
  logout: { spec: logoutSpec, run: logout },
  destroy: { spec: destroySpec, run: destroy },
  sweep: { spec: sweepSpec, run: sweep },
  backup: { spec: backupSpec, run: backup },
  export: { spec: exportSpec, run: exportSessions },
  import: { spec: importSpec, run: importSessions },
  migrate: { spec: migrateSpec, run: migrate },
  rekey: { spec: rekeySpec, run: rekey },
} as const

function usage(): string {
  const rows = Object.values(COMMANDS).map(({ spec }) => `  ${spec.name.padEnd(10)}${spec.summary}`)
  return [
    'Usage: tiered-session <command> [options]',
    '',
    'Commands:',
    ...rows,
    '',
    'Each command takes --help.',
    '',
  ].join('\n')
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name as keyof typeof COMMANDS]
  if (command === undefined) throw new CliError(`unknown command '${name}' (see: tiered-session --help)`, 2)
  if (rest.includes('--help')) {
    process.stdout.write(helpText(command.spec))
    return 0
  }
  await command.run(rest)
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    const message =
      error instanceof CliError ? error.message : String((error as Error)?.message ?? error).split('\n')[0]
    process.stderr.write(`tiered-session: ${message}\n`)
    process.exitCode = error instanceof CliError ? error.exitCode : 1
  },
)
