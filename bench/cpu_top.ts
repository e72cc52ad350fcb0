/**
 * Self time per function of V8 CPU profiles (`deno run --cpu-prof --cpu-prof-dir DIR`: one
 * `.cpuprofile` per isolate, the main thread and each worker), in microseconds per file.
 *
 *   deno run -A bench/cpu_top.ts DIR [--files 100000] [--top 15]
 *
 * @module
 */

import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { files: { type: "string", default: "100000" }, top: { type: "string", default: "15" } },
});
const files = Number(values.files);
for (
  const entry of [...Deno.readDirSync(positionals[0]!)].sort((a, b) => a.name < b.name ? -1 : 1)
) {
  if (!entry.name.endsWith(".cpuprofile")) continue;
  const profile: Profile = JSON.parse(Deno.readTextFileSync(`${positionals[0]}/${entry.name}`));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const file = frame.url.split("/").pop() ?? "";
    const key = frame.url
      ? `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`
      : frame.functionName;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = profile.endTime - profile.startTime;
  const idle = self.get("(idle)") ?? 0;
  console.log(
    `${entry.name}: ${(total / 1e6).toFixed(2)} s profiled, busy ${
      ((total - idle) / 1e6).toFixed(2)
    } s` +
      ` = ${((total - idle) / files).toFixed(1)} us/file`,
  );
  const top = [...self].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(
    0,
    Number(values.top),
  );
  for (const [name, us] of top) {
    console.log(`  ${(us / files).toFixed(2).padStart(7)} us/file  ${name}`);
  }
}
