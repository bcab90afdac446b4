// A tiny command dispatcher shared by the three bins: `NAME COMMAND [...]`,
// `--help` at every level, `--version`. Commands return an exit code; a
// thrown ConfigError or UsageError prints one line and exits 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from './config.js';

/** The command line is wrong: one line, then the command's usage; exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An input file is wrong (YAML, a document, a field): one line naming where, no usage; exit 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

type Options = NonNullable<ParseArgsConfig['options']>;
/** Parsed options: strings, flags, and lists for options given several times. */
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** e.g. "firewall render" */
  readonly name: string;
  readonly summary: string;
  /** Usage line after the command name, e.g. "--policy FILE". */
  readonly usage: string;
  readonly options: Options;
  run(values: OptionValues, positionals: string[]): Promise<number>;
}

export interface Cli {
  readonly name: string;
  readonly version: string;
  readonly summary: string;
  readonly commands: readonly Command[];
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function optionHelp(options: Options): string {
  return Object.entries(options)
    .map(([k, o]) => `      --${k}${o.type === 'string' ? ' VALUE' : ''}`)
    .join('\n');
}

export function helpText(cli: Cli): string {
  const width = Math.max(...cli.commands.map((c) => c.name.length));
  const lines = cli.commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `${cli.name} ${cli.version} — ${cli.summary}\n\nUsage: ${cli.name} COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n\nRun '${cli.name} COMMAND --help' for a command's options.\n`;
}

function commandHelp(cli: Cli, c: Command): string {
  const opts = optionHelp(c.options);
  return `Usage: ${cli.name} ${c.name} ${c.usage}\n\n${c.summary}\n${opts ? `\nOptions:\n${opts}\n` : ''}`;
}

/** Finds the longest command name that prefixes argv and runs it; returns the exit code. */
export async function runCli(cli: Cli, argv: readonly string[], io: Io = processIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(helpText(cli));
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version') {
    io.out(`${cli.version}\n`);
    return 0;
  }
  const matches = cli.commands
    .filter((c) => c.name.split(' ').every((word, i) => argv[i] === word))
    .sort((a, b) => b.name.length - a.name.length);
  const command = matches[0];
  if (!command) {
    io.err(`${cli.name}: unknown command '${argv.filter((a) => !a.startsWith('-')).join(' ')}'\n\n${helpText(cli)}`);
    return 2;
  }
  const rest = argv.slice(command.name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(commandHelp(cli, command));
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: [...rest], options: command.options, allowPositionals: true, strict: true });
    return await command.run(values as OptionValues, positionals);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${cli.name}: config error: ${err.message}\n`);
      return 2;
    }
    if (err instanceof InputError) {
      io.err(`${cli.name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${cli.name}: ${(err as Error).message}\n\n${commandHelp(cli, command)}`);
      return 2;
    }
    throw err;
  }
}

export function requireString(values: OptionValues, key: string): string {
  const v = values[key];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${key} is required`);
  return v;
}
