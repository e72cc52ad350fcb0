/**
 * Declarative flag tables: one per command, from which both the
 * `node:util` `parseArgs` options and the `--help` text are generated, so a
 * flag is declared once. Flags of the original Python tools keep their
 * names and meaning and are listed first in the help.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type CtnrError, UsageError } from "../mod.ts";
import { standardStreamAt } from "../lib/io/status_file.ts";

/** One flag of a command. */
export interface Flag {
  /** Long name, without `--`. */
  readonly name: string;
  /** One-letter alias, without `-`. */
  readonly short?: string;
  /** `boolean` takes no value; `string` takes one. */
  readonly type: "boolean" | "string";
  /** May be given more than once (values are collected). */
  readonly multiple?: boolean;
  /** Placeholder of the value in the help (`N`, `FILE`). */
  readonly arg?: string;
  /** Help text; `\n` starts a continuation line. */
  readonly help: string;
  /** Whether the original tools have the flag (listed first), or ctnr added it. */
  readonly origin: "original" | "ctnr";
  /** Library option the flag sets, so a library error about it can name the flag. */
  readonly option?: string;
}

/** A command: its usage line and flags. */
export interface CommandSpec {
  /** Command name (`create`). */
  readonly name: string;
  /** Usage line after `Usage: ` (`ctnr create --src DIR --container FILE [options]`). */
  readonly usage: string;
  /** Heading of the original tool's flags; omitted when the command has none. */
  readonly originalHeading?: string;
  /** Flags, in help order. */
  readonly flags: readonly Flag[];
}

/** Values parsed for a table: strings or booleans, arrays when `multiple`. */
export type FlagValues<F extends readonly Flag[]> = {
  [K in F[number] as K["name"]]?: K["type"] extends "boolean"
    ? (K["multiple"] extends true ? boolean[] : boolean)
    : (K["multiple"] extends true ? string[] : string);
};

/** The `--help` flag every command has. */
export const HELP: Flag = {
  name: "help",
  short: "h",
  type: "boolean",
  help: "show this help",
  origin: "ctnr",
};

/**
 * Parse `args` against a command's table.
 *
 * @param spec the command
 * @param args its arguments
 * @returns flag values and positional arguments
 * @throws {TypeError} from `parseArgs` (code `ERR_PARSE_ARGS_*`) on an unknown flag or a
 *   missing value; the CLI reports it as a usage error
 */
export function parseCommand<F extends readonly Flag[]>(
  spec: CommandSpec & { flags: F },
  args: string[],
): { values: FlagValues<F> & { help?: boolean }; positionals: string[] } {
  const options: Record<
    string,
    { type: "boolean" | "string"; short?: string; multiple?: boolean }
  > = {};
  for (const flag of [...spec.flags, HELP]) {
    const option: { type: "boolean" | "string"; short?: string; multiple?: boolean } = {
      type: flag.type,
    };
    if (flag.short !== undefined) option.short = flag.short;
    if (flag.multiple) option.multiple = true;
    options[flag.name] = option;
  }
  const { values, positionals, tokens } = parseArgs({
    args,
    options,
    allowPositionals: true,
    strict: true,
    tokens: true,
  });
  // parseArgs keeps the last of a value given twice: `--src A --src B` would pack B alone,
  // silently. A flag that takes one value is refused when it comes twice.
  const seen = new Map<string, string>();
  for (const token of tokens) {
    if (token.kind !== "option" || options[token.name]?.type !== "string") continue;
    if (options[token.name]?.multiple) continue;
    const first = seen.get(token.name);
    if (first !== undefined) {
      throw new UsageError(
        `Option --${token.name} given twice ("${first}" and "${token.value ?? ""}"); give it once`,
      );
    }
    seen.set(token.name, token.value ?? "");
  }
  return { values: values as FlagValues<F> & { help?: boolean }, positionals };
}

/** `--json`: one JSON summary on stdout (cli/summary.ts), human lines on stderr. */
export const JSON_SUMMARY = {
  name: "json",
  type: "boolean",
  origin: "ctnr",
  help: "print one JSON summary on stdout at the end (also when the run fails);\n" +
    "the other lines go to stderr",
} as const satisfies Flag;

/**
 * `-q`, `--quiet`: only the requested output on stdout.
 *
 * @param asked what a command prints when asked for, even quiet (`--print-each, --count`)
 * @returns the flag
 */
export function quiet(asked: string) {
  return {
    name: "quiet",
    short: "q",
    type: "boolean",
    origin: "ctnr",
    help: `print nothing on stdout but what was asked for\n(${asked});\n` +
      "errors and warnings still go to stderr",
  } as const satisfies Flag;
}

/**
 * Refuse the options of `names` that were given: in this mode they would change nothing.
 *
 * @param values the parsed flag values
 * @param names the flags (without `--`) not used in this mode
 * @param why when they are not used (`with --finalize-only (it only embeds the index)`)
 * @throws {UsageError} naming every one given
 */
export function refuseUnused(
  values: Readonly<Record<string, unknown>>,
  names: readonly string[],
  why: string,
): void {
  const given = names.filter((name) => values[name] !== undefined);
  if (given.length === 0) return;
  const list = given.map((name) => `--${name}`).join(", ");
  throw new UsageError(
    given.length === 1
      ? `Option ${list} is not used ${why}`
      : `Options ${list} are not used ${why}`,
  );
}

/**
 * Refuse `--status-format` without `--status-file`: it would format nothing.
 *
 * @param values the parsed flag values
 * @throws {UsageError} naming both
 */
export function refuseStatusFormatAlone(values: Readonly<Record<string, unknown>>): void {
  if (values["status-format"] !== undefined && values["status-file"] === undefined) {
    throw new UsageError("Option --status-format is not used without --status-file");
  }
}

/**
 * Refuse a `--status-file` that is standard output when `--json` keeps stdout for its summary.
 *
 * @param statusFile the `--status-file` value, if given
 * @param json whether `--json` was given
 * @throws {UsageError} naming both
 */
export async function refuseStatusOnJsonStdout(
  statusFile: string | undefined,
  json: boolean,
): Promise<void> {
  if (!json || statusFile === undefined) return;
  if (await standardStreamAt(statusFile) === "stdout") {
    throw new UsageError(
      `Option --status-file "${statusFile}" is where standard output goes, which --json keeps for its summary`,
    );
  }
}

/** Column where the help text of each flag starts. */
const HELP_COLUMN = 28;

/**
 * The `--help` text of a command, generated from its table.
 *
 * @param spec the command
 * @returns the text, without a final newline
 */
export function helpText(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage}`, ""];
  const original = spec.flags.filter((f) => f.origin === "original");
  const added = spec.flags.filter((f) => f.origin === "ctnr");
  if (original.length > 0) {
    lines.push(spec.originalHeading ?? "Options of the original tools (same names, same meaning):");
    for (const flag of original) lines.push(...flagLines(flag));
  }
  if (added.length > 0) {
    lines.push(original.length > 0 ? "Options ctnr adds:" : "Options:");
    for (const flag of added) lines.push(...flagLines(flag));
  }
  return lines.join("\n");
}

function flagLines(flag: Flag): string[] {
  const short = flag.short !== undefined ? `-${flag.short}, ` : "";
  const head = `  ${short}--${flag.name}${flag.arg !== undefined ? ` ${flag.arg}` : ""}`;
  const [first, ...more] = flag.help.split("\n");
  const lines = head.length < HELP_COLUMN
    ? [head.padEnd(HELP_COLUMN) + first]
    : [head, " ".repeat(HELP_COLUMN) + first];
  for (const line of more) lines.push(" ".repeat(HELP_COLUMN) + line);
  return lines;
}

/**
 * The flag that sets a library option, for messages (`fsyncEvery` -> `--fsync-every`).
 *
 * @param specs the command tables
 * @param option a library option name
 * @returns `--name` of the flag, or `undefined` when no flag sets it
 */
export function flagOf(specs: readonly CommandSpec[], option: string): string | undefined {
  for (const spec of specs) {
    const flag = spec.flags.find((f) => f.option === option);
    if (flag !== undefined) return `--${flag.name}`;
  }
  return undefined;
}

/**
 * An error's message with the library options it names (in backticks, `CtnrError.options`) shown
 * as the flags that set them (`` `allowUnsafeLinks` `` becomes `--allow-unsafe-links`).
 *
 * @param error the error
 * @param specs the commands whose flags may set them
 * @returns the message for the command line
 */
export function messageWithFlags(error: CtnrError, specs: readonly CommandSpec[]): string {
  let message = error.message;
  for (const option of error.options) {
    const flag = flagOf(specs, option);
    if (flag !== undefined) message = message.replaceAll(`\`${option}\``, flag);
  }
  return message;
}

/**
 * A whole number flag value.
 *
 * @param name the flag, for messages (`--fsync-every`)
 * @param text its value
 * @returns the number
 * @throws {UsageError} when it is not a whole number or not a safe integer
 */
export function integer(name: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`Option ${name} takes a whole number, got "${text}"`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UsageError(`Option ${name} is too large: ${text}`);
  return value;
}

/**
 * A `--concurrency` value: 0 to 16 workers.
 *
 * @param text the value
 * @returns the number of workers
 * @throws {UsageError} when out of range
 */
export function workers(text: string): number {
  const n = integer("--concurrency", text);
  if (n > 16) throw new UsageError(`Option --concurrency takes 0 to 16 workers, got ${n}`);
  return n;
}

/**
 * A `--status-format` value.
 *
 * @param text the value, or `undefined` for the default
 * @returns `kv` or `json`
 * @throws {UsageError} on any other value
 */
export function statusFormat(text: string | undefined): "kv" | "json" {
  if (text === undefined || text === "kv" || text === "json") return text ?? "kv";
  throw new UsageError(`Option --status-format must be "kv" or "json", got "${text}"`);
}
