import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { stopAtOnce } from "../cli/signals.ts";
import type { CliIo } from "../cli/output.ts";
import { columnsOf, ProgressDisplay, showExtractProgress } from "../cli/progress.ts";
import { RunSummary } from "../cli/summary.ts";
import {
  DENO_CHILD_TIMEOUT_MS,
  pseudoRandomBytes,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** What an in-process run printed: lines on a non-terminal, or a screen for a terminal. */
interface Captured {
  code: number;
  /** Everything written, in order; lines end with `\n`. */
  chunks: string[];
  /** The bar's own drawings (what went through `writeStderr`). */
  drawn: string[];
  /** Lines printed to standard error through `io.stderr`. */
  stderrLines: string[];
}

/**
 * Run the CLI in-process. `terminal`: standard error (and output) a terminal of that many
 * columns; else a file (plain progress lines every `progressInterval` milliseconds).
 */
async function run(
  args: string[],
  options: { terminal?: number; progressInterval?: number } = {},
): Promise<Captured> {
  const captured: Captured = { code: 0, chunks: [], drawn: [], stderrLines: [] };
  const io: CliIo = {
    stdout: (text) => captured.chunks.push(text + "\n"),
    stderr: (text) => {
      captured.chunks.push(text + "\n");
      captured.stderrLines.push(text);
    },
    writeBytes: () => Promise.resolve(),
    isTerminal: options.terminal !== undefined,
  };
  if (options.terminal !== undefined) {
    const columns = options.terminal;
    io.stdoutIsTerminal = true;
    io.writeStderr = (text) => {
      captured.chunks.push(text);
      captured.drawn.push(text);
    };
    io.terminalColumns = () => columns;
  }
  if (options.progressInterval !== undefined) io.progressInterval = options.progressInterval;
  captured.code = await main(args, io);
  return captured;
}

/**
 * The rows a terminal of `columns` shows after `chunks` (the whole scrollback): `\r`, `\n`,
 * erase to the end of the line (`ESC [ K`), line wrapping on and off (`ESC [ ? 7 h/l`). Any
 * other control sequence fails the test: the display uses no other.
 */
function screen(chunks: string[], columns: number): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  let wrap = true;
  const text = chunks.join("");
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\r") col = 0;
    else if (c === "\n") {
      row++;
      col = 0;
      rows[row] ??= [];
    } else if (c === "\x1b") {
      // deno-lint-ignore no-control-regex
      const sequence = /^\x1b\[(\?7[hl]|K)/.exec(text.slice(i));
      assert.ok(sequence, `unexpected control sequence ${JSON.stringify(text.slice(i, i + 8))}`);
      if (sequence[1] === "K") rows[row]!.length = Math.min(rows[row]!.length, col);
      else wrap = sequence[1] === "?7h";
      i += sequence[0].length - 1;
    } else {
      if (col >= columns) {
        if (wrap) {
          row++;
          col = 0;
          rows[row] ??= [];
        } else col = columns - 1;
      }
      const line = rows[row]!;
      while (line.length < col) line.push(" ");
      line[col++] = c;
    }
  }
  return rows.map((r) => r.join("").trimEnd());
}

/** A source of `files` small files, a FIFO (a warning) and a symlink (a warning with --symlinks skip). */
async function warningSource(src: string, files: number): Promise<void> {
  const spec: Record<string, string | { symlink: string }> = { "link": { symlink: "d/f0.txt" } };
  for (let i = 0; i < files; i++) spec[`d/f${i}.txt`] = `file number ${i}`;
  await writeTree(src, spec);
  const made = await runCommand("mkfifo", [`${src}/fifo`], { timeoutMs: TOOL_TIMEOUT_MS });
  assert.equal(made.code, 0, made.stderr);
}

/** create -v's line for `d/f<i>.txt`, -vv's, and extract -vv's: each whole, on a row of its own. */
const appending = (i: number) => new RegExp(`^\\[[^\\]]+\\] \\[\\d+\\] Appending: d/f${i}\\.txt$`);
const completed = (i: number) =>
  new RegExp(`^\\[[^\\]]+\\] Completed: d/f${i}\\.txt \\(\\d+ B\\) sha=[0-9a-f]{12} offset=\\d+$`);
const extracted = (i: number) =>
  new RegExp(`^\\[[^\\]]+\\] Extracted entry: d/f${i}\\.txt \\(offset=\\d+ size=\\d+\\)$`);

const FIFO_WARNING = 'ctnr: warning: Left out special file "fifo" (FIFO, socket or device)';
const LINK_WARNING = 'ctnr: warning: Left out symlink "link" -> "d/f0.txt"';
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

Deno.test("main create --progress prints log lines and warnings above the bar on a terminal", async () => {
  await withTempDir(async (dir) => {
    await warningSource(`${dir}/src`, 200);
    const created = await run(
      ["create", `${dir}/src`, `${dir}/c.ctnr`, "--progress", "-vv", "--symlinks", "skip"],
      { terminal: 100 },
    );
    assert.equal(created.code, 0, created.chunks.join(""));
    assert.ok(created.drawn.length > 0, "a bar was drawn");
    const rows = screen(created.chunks, 100);
    for (let i = 0; i < 200; i++) {
      for (const line of [appending(i), completed(i)]) {
        const found = rows.filter((r) => line.test(r));
        assert.equal(found.length, 1, `${line}, whole, once:\n${rows.join("\n")}`);
      }
    }
    assert.equal(rows.filter((r) => r === FIFO_WARNING).length, 1, rows.join("\n"));
    assert.equal(rows.filter((r) => r === LINK_WARNING).length, 1, rows.join("\n"));
    const bars = rows.filter((r) => r.startsWith("writing"));
    assert.equal(bars.length, 1, `one bar line stays:\n${rows.join("\n")}`);
    assert.match(bars[0]!, /^writing \d+ files \d+(\.\d+)?[KM]?i?B \[\d\d:\d\d, .*\/s\]$/);
    const bar = rows.indexOf(bars[0]!);
    const done = rows.findIndex((r) => /\] Done\.$/.test(r));
    assert.ok(done > bar, `the summary comes below the bar:\n${rows.join("\n")}`);
    assert.match(rows[done + 3] ?? "", /\] Added 200 entries/, rows.join("\n"));
  });
});

Deno.test("main shows each phase as it starts: scanning, writing, finalizing; planning, then writing or verifying", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "aaa", "b/c.txt": "cc" });
    const phasesOf = (drawn: string[]) =>
      // deno-lint-ignore no-control-regex
      drawn.map((d) => /^\r\x1b\[\?7l(\w+)/.exec(d)?.[1]).filter((p) => p !== undefined)
        .filter((p, i, all) => p !== all[i - 1]);
    const created = await run(
      ["create", `${dir}/src`, `${dir}/c.ctnr`, "--tqdm", "--count", "--finalize"],
      { terminal: 120 },
    );
    assert.equal(created.code, 0);
    assert.deepEqual(phasesOf(created.drawn), ["scanning", "writing", "finalizing"]);
    const extracted = await run(["extract", `${dir}/c.ctnr`, `${dir}/out`, "--progress"], {
      terminal: 120,
    });
    assert.equal(extracted.code, 0);
    assert.deepEqual(phasesOf(extracted.drawn), ["planning", "writing"]);
    const verified = await run(["verify", `${dir}/c.ctnr`, "--progress"], { terminal: 120 });
    assert.equal(verified.code, 0);
    assert.deepEqual(phasesOf(verified.drawn), ["planning", "verifying"]);
    // The bar with a total: the percent, the bar, files and bytes of their totals.
    const last = screen(extracted.chunks, 120).find((r) => r.startsWith("writing"));
    assert.match(last ?? "", /^writing 100% █+ 2\/2 entries 5B\/5B \[\d\d:\d\d, .*\/s\]$/);
  });
});

Deno.test("main create --progress without a total shows a counter, not a bar", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "a.txt": "aaa", "b/c.txt": "cc" });
    const plain = await run(["create", `${dir}/src`, `${dir}/c.ctnr`, "--progress"]);
    assert.equal(plain.code, 0);
    const lines = plain.stderrLines.filter((l) => l.startsWith("ctnr: progress:"));
    assert.deepEqual(lines.length, 1, plain.stderrLines.join("\n"));
    assert.match(
      lines[0]!,
      /^ctnr: progress: writing 2 files \| 5B \| [\d.]+[KMG]?i?B\/s \| elapsed \d\d:\d\d$/,
    );
    const terminal = await run(["create", `${dir}/src`, `${dir}/t.ctnr`, "--progress"], {
      terminal: 120,
    });
    const row = screen(terminal.chunks, 120).find((r) => r.startsWith("writing"));
    assert.match(row ?? "", /^writing 2 files 5B \[\d\d:\d\d, .*\/s\]$/, "no percent, no bar");
  });
});

Deno.test("main --progress prints plain lines with files, bytes and percent when stderr is not a terminal", async () => {
  await withTempDir(async (dir) => {
    // A file streamed in 1 MiB pieces (each read and write gives the timer its turn) and many
    // small ones.
    const spec: Record<string, string | Uint8Array> = { "big.bin": pseudoRandomBytes(24 << 20, 5) };
    for (let i = 0; i < 3000; i++) spec[`d${i % 10}/f${i}.txt`] = `file ${i}`.padEnd(100, ".");
    await writeTree(`${dir}/src`, spec);
    // Each phase's line: what it counts, elapsed, then the time left and the name while it runs.
    const size = String.raw`\d+(\.\d+)?[KMG]?i?B`;
    const tail = String.raw` \| ${size}/s \| elapsed \d\d:\d\d( \| ETA [\d:-]+)?( \| .+)?$`;
    const forms = [
      new RegExp(String.raw`^ctnr: progress: scanning \d+ files found \| ${size}${tail}`),
      new RegExp(String.raw`^ctnr: progress: planning \d+% \| index ${size}/${size}${tail}`),
      new RegExp(
        String.raw`^ctnr: progress: (writing|verifying) \d+% \| \d+/\d+ (files|entries) \| ` +
          String.raw`${size}/${size}${tail}`,
      ),
    ];
    for (
      const args of [
        [
          "create",
          `${dir}/src`,
          `${dir}/c.ctnr`,
          "--tqdm",
          "--scan-sizes",
          "--chunk-size",
          "1048576",
        ],
        ["verify", `${dir}/c.ctnr`, "--progress", "--chunk-size", "1048576"],
      ]
    ) {
      const ran = await run(args, { progressInterval: 2 });
      assert.equal(ran.code, 0, ran.stderrLines.join("\n"));
      const lines = ran.stderrLines.filter((l) => l.startsWith("ctnr: progress:"));
      assert.ok(lines.length >= 2, `lines while it ran, and one at the end: ${lines.join("\n")}`);
      for (const l of lines) {
        assert.ok(forms.some((form) => form.test(l)), `a line of its phase's form: ${l}`);
        assert.doesNotMatch(l, CONTROL, "no control codes");
      }
      assert.match(
        lines.at(-1)!,
        args[0] === "create"
          ? /^ctnr: progress: writing 100% \| 3001\/3001 files \| 24\.3MiB\/24\.3MiB \| /
          : /^ctnr: progress: verifying 100% \| 3001\/3001 entries \| 24\.3MiB\/24\.3MiB \| /,
      );
      assert.ok(ran.drawn.length === 0 && !ran.chunks.join("").includes("\x1b"));
    }
  });
});

Deno.test("ProgressDisplay escapes control and bidi characters of names on the bar", async () => {
  const drawn: string[] = [];
  const display = new ProgressDisplay(terminalIo(drawn, 120));
  try {
    display.phase("writing", { unit: "files", totalCount: 2 });
    display.update(1, 0, "a\u202eb\u0007c\u001b[31m");
    await new Promise((resolve) => setTimeout(resolve, 350)); // a redraw or more
  } finally {
    display.stop();
  }
  const all = drawn.join("");
  assert.match(all, /a\\u202eb\\x07c\\x1b\[31m/, "the name, escaped");
  for (const raw of ["\u202e", "\u0007", "\u001b[31m"]) {
    assert.ok(!all.includes(raw), `a raw ${JSON.stringify(raw)} reached the terminal`);
  }
});

const TMUX = await runCommand("tmux", ["-V"], { timeoutMs: TOOL_TIMEOUT_MS }).then(
  (r) => r.code === 0,
  () => false,
);

Deno.test({
  name:
    "main --progress -v on a real terminal (tmux): no line overwritten, summary and warnings readable, one bar line each, each ended phase kept as a line",
  ignore: !TMUX,
  fn: async () => {
    await withTempDir(async (dir) => {
      await warningSource(`${dir}/src`, 600); // over 512 files: read and write workers start
      const socket = `ctnr-progress-test-${Deno.pid}`;
      const tmux = (...args: string[]) =>
        runCommand("tmux", ["-L", socket, "-f", "/dev/null", ...args], {
          timeoutMs: TOOL_TIMEOUT_MS,
        });
      const deno = `'${Deno.execPath()}' run -A '${CLI}'`;
      const script = [
        `${deno} create '${dir}/src' '${dir}/c.ctnr' --progress -vv --symlinks skip --count`,
        `${deno} extract '${dir}/c.ctnr' '${dir}/out' --progress -vv`,
        "echo CTNR-TEST-END",
        "sleep 120",
      ].join("; ");
      try {
        const started = await tmux("new-session", "-d", "-x", "120", "-y", "40", script);
        assert.equal(started.code, 0, started.stderr);
        let rows: string[] = [];
        const deadline = Date.now() + 2 * DENO_CHILD_TIMEOUT_MS;
        while (Date.now() < deadline) {
          const captured = await tmux("capture-pane", "-p", "-J", "-S", "-");
          rows = captured.stdout.split("\n").map((r) => r.trimEnd());
          if (rows.includes("CTNR-TEST-END")) break;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        const text = rows.join("\n");
        assert.ok(rows.includes("CTNR-TEST-END"), `the runs ended:\n${text}`);
        for (let i = 0; i < 600; i++) {
          for (const line of [appending(i), completed(i), extracted(i)]) {
            assert.equal(rows.filter((r) => line.test(r)).length, 1, `${line}, whole, once`);
          }
        }
        assert.equal(rows.filter((r) => r === FIFO_WARNING).length, 1, text);
        assert.equal(rows.filter((r) => r === LINK_WARNING).length, 1, text);
        // Each phase that ended stays as a line of its own: create's scan (--count) once, before
        // its writing. Extract's planning line: at most once (under a loaded CI machine it was
        // once an empty row instead, not understood yet: see the closing note of issue 13).
        const scanned = rows.filter((r) => /^scanning /.test(r));
        assert.equal(scanned.length, 1, `the scanning line stays, once:\n${text}`);
        assert.ok(rows.filter((r) => /^planning /.test(r)).length <= 1, text);
        const bars = rows.filter((r) => /^writing /.test(r));
        assert.equal(bars.length, 2, `one bar line for each run:\n${text}`);
        assert.ok(rows.indexOf(scanned[0]!) < rows.indexOf(bars[0]!), text);
        assert.match(bars[0]!, /^writing 100% █+ 602\/602 files [\d.]+KiB \[/);
        assert.match(bars[1]!, /^writing 100% █+ 600\/600 entries [\d.]+KiB\/[\d.]+KiB \[/);
        const done = rows.flatMap((r, i) => /^\[[^\]]+\] Done\.$/.test(r) ? [i] : []);
        assert.equal(done.length, 2, text);
        assert.ok(done[0]! > rows.indexOf(bars[0]!) && done[1]! > rows.indexOf(bars[1]!), text);
        assert.ok(rows.some((r) => /\] Added 600 entries /.test(r)), text);
        assert.ok(rows.some((r) => /\] Extracted 600 of 600 entries /.test(r)), text);
      } finally {
        await tmux("kill-server");
      }
    });
  },
});

Deno.test("a second signal ends the bar as a line before its message: the message is not glued to the bar", () => {
  const written: string[] = [];
  const io = {
    stdout: () => {},
    stderr: (text: string) => written.push(`${text}\n`),
    writeBytes: () => Promise.resolve(),
    isTerminal: true,
    writeStderr: (text: string) => written.push(text),
    terminalColumns: () => 120,
  };
  const display = new ProgressDisplay(io);
  try {
    display.phase("writing", { unit: "files", totalCount: 10 });
    display.update(3, 0, "d/f3");
    const code = stopAtOnce("SIGINT", io, new RunSummary("extract"));
    assert.equal(code, 130);
  } finally {
    display.stop();
  }
  const rows = written.join("").split("\n").map((row) => row.slice(row.lastIndexOf("\r") + 1));
  const message = rows.findIndex((row) => row.includes("Interrupted by SIGINT again"));
  assert.equal(rows[message], "ctnr: Interrupted by SIGINT again: stopped at once");
  const above = rows[message - 1]!.replaceAll("\x1b[?7l", "");
  assert.match(above, /^writing +30% .* 3\/10 files/, "the bar kept above");
});

Deno.test("the bar measures names in terminal columns: a wide (CJK) name is cut to its tail and the line fits", async () => {
  const drawn: string[] = [];
  const display = new ProgressDisplay(terminalIo(drawn, 110));
  const name = `b-${"名前の長いファイル".repeat(4)}.bin`;
  try {
    display.phase("writing", { unit: "files", totalCount: 2 });
    display.update(1, 0, name);
    await new Promise((resolve) => setTimeout(resolve, 350)); // a redraw or more
  } finally {
    display.stop();
  }
  const lines = drawn.filter((d) => d.includes(".bin")).map((d) =>
    d.replaceAll("\r", "").replaceAll("\x1b[?7l", "").replaceAll("\x1b[K", "").replaceAll(
      "\x1b[?7h",
      "",
    )
  );
  assert.ok(lines.length > 0, "the name was drawn");
  for (const line of lines) {
    assert.ok(columnsOf(line) <= 109, `${columnsOf(line)} columns: ${line}`);
    assert.match(line, /…[^…]*ファイル\.bin$/, "the tail of the name, after an ellipsis");
  }
  assert.equal(columnsOf("a名😀\u0301\u200d"), 5);
});

Deno.test("a count without a total says one item in the singular: 1 file found, 2 files found", () => {
  const lines: string[] = [];
  const display = new ProgressDisplay({
    stdout: () => {},
    stderr: (text) => lines.push(text),
    writeBytes: () => Promise.resolve(),
    isTerminal: false,
    progressInterval: 60_000,
  });
  display.phase("scanning", { unit: "files found" });
  display.update(1, 0, "");
  display.phase("writing", { unit: "files" });
  display.update(2, 0, "");
  display.stop();
  assert.match(lines[0]!, /^ctnr: progress: scanning 1 file found \|/);
  assert.match(lines[1]!, /^ctnr: progress: writing 2 files \|/);
});

/** A terminal `cols` wide whose drawing lands in `drawn` (printed lines go nowhere). */
function terminalIo(drawn: string[], cols: number): CliIo {
  return {
    stdout: () => {},
    stderr: () => {},
    writeBytes: () => Promise.resolve(),
    isTerminal: true,
    writeStderr: (text) => drawn.push(text),
    terminalColumns: () => cols,
  };
}

Deno.test("extract progress of a set shows no byte total while its shards still plan (no 17B/0B)", async () => {
  const drawn: string[] = [];
  const display = new ProgressDisplay(terminalIo(drawn, 120));
  const progress = {
    phase: "writing" as const,
    indexBytesRead: 0,
    indexBytes: 0,
    entriesDone: 3,
    bytesDone: 17,
    totalEntries: 40,
    totalBytes: 0, // what a set reports until every shard has planned
    currentEntry: "a.txt",
  };
  try {
    const show = showExtractProgress(display, "writing");
    show(progress);
    await new Promise((resolve) => setTimeout(resolve, 350)); // a redraw or more
    show({ ...progress, entriesDone: 40, bytesDone: 90, totalBytes: 90 });
    await new Promise((resolve) => setTimeout(resolve, 350));
  } finally {
    display.stop();
  }
  const all = drawn.join("");
  assert.match(all, /3\/40 entries 17B \[/);
  assert.ok(!all.includes("/0B"), all);
  assert.match(all, /40\/40 entries 90B\/90B/);
});
