/**
 * What `--progress` costs: create and extract of 100,000 files of 4 KiB on tmpfs, each run
 * without and with `--progress`, alternated, timing only the ctnr command (the outputs are
 * removed before it, untimed). Standard error goes to a pipe (plain lines every 10 s) and, with
 * `--terminal`, to a terminal (`script` gives the run a pseudo-terminal on both sides: the bar
 * redrawn ten times a second). The extract runs read the container of the last create run.
 *
 *   deno run -A bench/progress_cost.ts [--runs 9] [--terminal]
 *
 * Prints, for each side, the wall time and the CPU time (user + system, of the process and its
 * workers) in seconds as min/median/max, and the change of the minimum and the median: on a
 * machine shared with other work the wall time swings far more than the cost measured, and the
 * CPU time much less.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchRoot, ctnrCommand, fillRandom, median } from "./_measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "9" }, terminal: { type: "boolean" } },
});
const runs = Number(values.runs);
const root = await benchRoot();
const quote = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
// Times the command inside a shell: wall time in ms, and the CPU time of its children in clock
// ticks (cutime + cstime of the shell, once the command is waited for).
const TIMED = `${root}/timed.sh`;

try {
  await Deno.writeTextFile(
    TIMED,
    `#!/bin/bash
out=$1; shift
start=$(date +%s%N)
"$@"
code=$?
end=$(date +%s%N)
read -r -a stat < /proc/$$/stat
echo "$(( (end - start) / 1000000 )) $(( stat[15] + stat[16] ))" > "$out"
exit $code
`,
    { mode: 0o755 },
  );
  const src = `${root}/small`;
  const buf = new Uint8Array(4096);
  for (let d = 0; d < 100; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      fillRandom(buf, d * 1000 + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
  console.log(`bench root ${root}, ${runs} runs a side, alternated, seconds`);
  const modes = values.terminal ? ["pipe", "terminal"] as const : ["pipe"] as const;
  for (const mode of modes) {
    await compare(
      `create 100,000 x 4 KiB, stderr a ${mode}`,
      (progress) => ["create", src, `${root}/s.ctnr`, ...progress],
      () => removeAll([`${root}/s.ctnr`, `${root}/s.ctnr.idx`]),
      mode,
    );
    await compare(
      `extract 100,000 x 4 KiB, stderr a ${mode}`,
      (progress) => ["extract", `${root}/s.ctnr`, `${root}/sx`, ...progress],
      () => removeAll([`${root}/sx`]),
      mode,
    );
  }
} finally {
  await Deno.remove(root, { recursive: true });
}

async function compare(
  label: string,
  args: (progress: string[]) => string[],
  clean: () => Promise<void>,
  mode: "pipe" | "terminal",
): Promise<void> {
  const wall: Record<"plain" | "progress", number[]> = { plain: [], progress: [] };
  const cpu: Record<"plain" | "progress", number[]> = { plain: [], progress: [] };
  const out = `${root}/timing`;
  // A first run of each side, untimed: the page cache and Deno's code cache warm.
  for (let i = -1; i < runs; i++) {
    for (const side of ["plain", "progress"] as const) {
      await clean();
      const argv = [
        TIMED,
        out,
        ...ctnrCommand(),
        ...args(side === "progress" ? ["--progress"] : []),
      ];
      const [cmd, ...rest] = mode === "pipe"
        ? argv
        : ["script", "-qec", argv.map(quote).join(" "), "/dev/null"];
      const run = await new Deno.Command(cmd!, { args: rest, stdout: "null", stderr: "piped" })
        .output();
      if (!run.success) throw new Error(`${label}: ${side} exited ${run.code}`);
      const [ms, ticks] = (await Deno.readTextFile(out)).trim().split(" ").map(Number);
      if (i >= 0) {
        wall[side].push(ms! / 1000);
        cpu[side].push(ticks! / 100);
      }
    }
  }
  const show = (xs: number[]) =>
    `${Math.min(...xs).toFixed(2)}/${median(xs).toFixed(2)}/${Math.max(...xs).toFixed(2)}`;
  const change = (f: (xs: number[]) => number, t: typeof wall) => {
    const c = (f(t.progress) / f(t.plain) - 1) * 100;
    return `${c >= 0 ? "+" : ""}${c.toFixed(1)}%`;
  };
  const min = (xs: number[]) => Math.min(...xs);
  console.log(`${label}:`);
  console.log(
    `  wall: without ${show(wall.plain)}, with --progress ${show(wall.progress)} ` +
      `(min/median/max); min ${change(min, wall)}, median ${change(median, wall)}`,
  );
  console.log(
    `  CPU:  without ${show(cpu.plain)}, with --progress ${show(cpu.progress)} ` +
      `(min/median/max); min ${change(min, cpu)}, median ${change(median, cpu)}`,
  );
}

async function removeAll(paths: string[]): Promise<void> {
  for (const path of paths) await Deno.remove(path, { recursive: true }).catch(() => {});
}
