import assert from "node:assert/strict";
import fc from "fast-check";
import { compareCodePoints, walkTree } from "../lib/walk.ts";
import { SourceError } from "../mod.ts";
import { withTempDir, writeTree } from "./_helpers.ts";

Deno.test("compareCodePoints orders like the UTF-8 bytes of the strings", () => {
  const encoder = new TextEncoder();
  const byBytes = (a: string, b: string) => {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
      assert.equal(Math.sign(compareCodePoints(a, b)), Math.sign(byBytes(a, b)));
    }),
    { numRuns: 2000 },
  );
  // The case UTF-16 order gets wrong: U+FF5E (3 bytes) sorts before U+1F600 (4 bytes).
  assert.ok(compareCodePoints("\uff5e", "\u{1f600}") < 0);
  assert.ok("\uff5e" > "\u{1f600}"); // plain JS comparison disagrees
});

Deno.test("walkTree walks depth first in code-point order and yields only empty folders", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, {
      "b.txt": "b",
      "a/z.txt": "z",
      "a.txt": "a",
      "empty": { dir: true },
      "full/x.txt": "x",
      "link": { symlink: "a.txt" },
    });
    const seen: string[] = [];
    for await (const item of walkTree(`${dir}/src`)) seen.push(`${item.kind}:${item.relpath}`);
    assert.deepEqual(seen, [
      "file:a/z.txt",
      "file:a.txt",
      "file:b.txt",
      "dir:empty",
      "file:full/x.txt",
      "symlink:link",
    ]);
  });
});

Deno.test("walkTree reports unlistable sources and unportable names, then goes on", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(async () => {
      for await (const _ of walkTree(`${dir}/missing`)) { /* nothing */ }
    }, SourceError);
    await writeTree(`${dir}/src`, { "ok.txt": "ok", "back\\slash": "x" });
    const errors: string[] = [];
    const seen: string[] = [];
    for await (const item of walkTree(`${dir}/src`, { onError: (e) => errors.push(e.message) })) {
      seen.push(item.relpath);
    }
    assert.deepEqual(seen, ["ok.txt"]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /back\\slash.*backslash/);
  });
});
