/**
 * The plan's parallel path (index lines parsed by workers, admitted in order)
 * gives the same plan, and the same first error, as the plan read on one
 * thread. Indexes here span many blocks of 64 KiB.
 */

import assert from "node:assert/strict";
import { ContainerReader } from "../lib/container_reader.ts";
import {
  type BlockParser,
  type ExtractPlan,
  planExtraction,
  planExtractionInParallel,
  type PlanOptions,
} from "../lib/extract_plan.ts";
import { EMPTY_SHA256 } from "../lib/format.ts";
import { parseLineBlock } from "../lib/_index_block.ts";
import { extractContainer } from "../lib/extractor.ts";
import { exists, listPaths, withTempDir } from "./_helpers.ts";

let parsed = 0;
const inThread: BlockParser = (request) => {
  parsed++;
  return Promise.resolve(parseLineBlock(request));
};

/** Index lines of `count` empty files spread over folders, then whatever `extra` adds. */
function indexLines(count: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(JSON.stringify({
      relpath: `d${i % 50}/f${i}.bin`,
      offset: 0,
      payload_size: 0,
      orig_size: 0,
      sha256: EMPTY_SHA256,
      compressed: false,
    }));
  }
  return lines;
}

/** The plan or the error of both paths, for the index `text` beside an empty container. */
async function bothPlans(
  dir: string,
  text: string | Uint8Array,
  options: PlanOptions = {},
  parser: BlockParser = inThread,
): Promise<[ExtractPlan | Error, ExtractPlan | Error]> {
  await Deno.writeFile(`${dir}/c.ctnr`, new Uint8Array(0));
  await Deno.writeFile(
    `${dir}/c.ctnr.idx`,
    typeof text === "string" ? new TextEncoder().encode(text) : text,
  );
  const outcome = async (plan: (reader: ContainerReader) => Promise<ExtractPlan>) => {
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      return await plan(reader);
    } catch (error) {
      return error as Error;
    } finally {
      reader.close();
    }
  };
  return [
    await outcome((reader) => planExtraction(reader, options)),
    await outcome((reader) => planExtractionInParallel(reader, options, parser)),
  ];
}

function assertSame([sequential, parallel]: [ExtractPlan | Error, ExtractPlan | Error]): void {
  if (sequential instanceof Error) {
    assert.ok(parallel instanceof Error, `parallel gave a plan, sequential: ${sequential.message}`);
    assert.equal(parallel.constructor, sequential.constructor);
    assert.equal(parallel.message, sequential.message);
  } else assert.deepEqual(parallel, sequential);
}

Deno.test("planExtractionInParallel: the same plan as planExtraction, links and folders too", async () => {
  await withTempDir(async (dir) => {
    const lines = indexLines(8000); // ~1.2 MiB: about 20 blocks
    lines.splice(10, 0, JSON.stringify({ relpath: "top", entry_type: "dir" }));
    lines.push(JSON.stringify({ relpath: "link-in", entry_type: "symlink", link_target: "d1" }));
    lines.push(
      JSON.stringify({ relpath: "d2/out", entry_type: "symlink", link_target: "../../x" }),
    );
    lines.splice(4000, 0, "", "   "); // blank lines are skipped by both
    const refused: string[][] = [[], []];
    let path = 0;
    const options: PlanOptions = {
      onUnsafeLink: (entry) => refused[path]!.push(entry.relpath),
    };
    const sequential = await bothPlans(dir, lines.join("\n") + "\n", {
      ...options,
      onUnsafeLink: (entry, error) => {
        // Both paths run in turn: the first half of the calls are the sequential path's.
        options.onUnsafeLink!(entry, error);
        if (entry.relpath === "d2/out") path++;
      },
    });
    assertSame(sequential);
    assert.ok(parsed >= 2, `${parsed} blocks parsed`); // the parallel path ran, over several blocks
    const plan = sequential[1] as ExtractPlan;
    assert.equal(plan.files, 8000);
    assert.equal(plan.dirs, 1);
    assert.equal(plan.symlinks, 2);
    assert.equal(plan.unsafeLinks, 1);
    assert.deepEqual(refused, [["d2/out"], ["d2/out"]]);
  });
});

Deno.test("planExtractionInParallel: the same first error as planExtraction", async (t) => {
  const base = indexLines(8000);
  const cases: Record<string, (lines: string[]) => string | Uint8Array> = {
    "a duplicate in the second block": (lines) => [...lines, lines[3]!].join("\n") + "\n",
    "a bad JSON line in the second block, a duplicate after it": (lines) => {
      const copy = [...lines];
      copy.splice(7000, 0, "{not json");
      return [...copy, lines[0]!].join("\n") + "\n";
    },
    "a duplicate before a bad JSON line of the same block": (lines) => {
      const copy = [...lines];
      copy.splice(7000, 0, lines[6999]!, "{not json");
      return copy.join("\n") + "\n";
    },
    "an unsafe relpath": (lines) => {
      const copy = [...lines];
      copy[6000] = copy[6000]!.replace("d0/f6000.bin", "../escape");
      return copy.join("\n") + "\n";
    },
    "a payload past the payload area": (lines) => {
      const copy = [...lines];
      copy[5000] = copy[5000]!.replace('"offset":0', '"offset":5');
      return copy.join("\n") + "\n";
    },
    "a file where a folder must be": (lines) =>
      [...lines, JSON.stringify({ relpath: "d7/f7.bin/x", entry_type: "dir" })].join("\n") + "\n",
    "no final newline": (lines) => lines.join("\n"),
    "a torn last line": (lines) => lines.join("\n") + '\n{"relpath":"d9/to',
    "a line that is not UTF-8": (lines) => {
      const text = new TextEncoder().encode(lines.join("\n") + '\n{"relpath":"x"}\n');
      text[text.length - 4] = 0xff; // the "x"
      return text;
    },
  };
  for (const [name, build] of Object.entries(cases)) {
    await t.step(name, async () => {
      await withTempDir(async (dir) => assertSame(await bothPlans(dir, build(base))));
    });
  }
});

Deno.test("planExtractionInParallel falls back to the plan on this thread when a parser fails", async () => {
  await withTempDir(async (dir) => {
    let calls = 0;
    const failing: BlockParser = () => {
      calls++;
      return Promise.reject(new Error("worker gone"));
    };
    const lines = indexLines(8000);
    const [sequential, parallel] = await bothPlans(dir, lines.join("\n") + "\n", {}, failing);
    assert.ok(calls > 0);
    assert.deepEqual(parallel, sequential);
    assert.equal((parallel as ExtractPlan).files, 8000);
  });
});

Deno.test("extract refuses a duplicate late in a long index (parallel plan) before writing anything", async () => {
  await withTempDir(async (dir) => {
    const lines = indexLines(3000); // ~500 KB: the write workers start before the plan
    lines.push(lines[1]!);
    await Deno.writeFile(`${dir}/c.ctnr`, new Uint8Array(0));
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, lines.join("\n") + "\n");
    await assert.rejects(
      () => extractContainer(`${dir}/c.ctnr`, `${dir}/out`),
      /Cannot extract "d1\/f1\.bin": another entry has the same path/,
    );
    assert.ok(!(await exists(`${dir}/out`)) || (await listPaths(`${dir}/out`)).length === 0);
    lines.pop();
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, lines.join("\n") + "\n");
    const result = await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
    assert.equal(result.extracted, 3000);
    assert.equal((await listPaths(`${dir}/out`)).length, 3050); // 3,000 files in 50 folders
  });
});
