import assert from "node:assert/strict";
// A full specifier: ctnr runs from a URL, without its deno.json (README "Runtime dependencies").
// deno-lint-ignore no-import-prefix
import fc from "npm:fast-check@4.11.0";
import { RelpathSet } from "../lib/safety/relpath_set.ts";

Deno.test("RelpathSet answers like a Set of strings and keeps each value", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string(), fc.nat({ max: 0xffffffff }))), (pairs) => {
      const set = new RelpathSet(4);
      const model = new Map<string, number>();
      for (const [text, value] of pairs) {
        assert.equal(set.add(text, value), !model.has(text));
        if (!model.has(text)) model.set(text, value);
      }
      assert.equal(set.size, model.size);
      for (const [text, value] of model) assert.equal(set.get(text), value);
      for (const [text] of pairs) assert.ok(set.has(text));
      assert.equal(set.has("\u0000never added\u0000"), model.has("\u0000never added\u0000"));
    }),
    { numRuns: 300 },
  );
});

Deno.test("RelpathSet holds a million relpaths in bounded typed arrays", () => {
  const set = new RelpathSet();
  for (let i = 0; i < 1_000_000; i++) set.add(`d${i % 1000}/f${i}.txt`);
  assert.equal(set.size, 1_000_000);
  assert.ok(set.has("d999/f999999.txt"));
  assert.ok(!set.has("d999/f1000000.txt"));
});

Deno.test("RelpathSet keeps its marks, each counted once, through the growth of its table", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string(), { maxLength: 200 }),
      fc.array(fc.nat({ max: 400 })),
      (texts, picks) => {
        const set = new RelpathSet(4);
        const marked = new Set<string>();
        const half = texts.length >> 1;
        // Marks made before the table grows (the second half is added after them) must stay.
        texts.slice(0, half).forEach((text, i) => set.add(text, i));
        const mark = (text: string) => {
          const value = set.getAndMark(text);
          if (set.has(text)) {
            assert.equal(value, set.get(text));
            marked.add(text);
          } else assert.equal(value, undefined);
        };
        for (const pick of picks.slice(0, picks.length >> 1)) mark(texts[pick] ?? "\0absent");
        texts.slice(half).forEach((text, i) => set.add(text, half + i));
        for (const pick of picks.slice(picks.length >> 1)) mark(texts[pick] ?? "\0absent");
        assert.equal(set.marked, marked.size);
        for (const text of texts) assert.equal(set.isMarked(text), marked.has(text), text);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("RelpathSet.dispose gives its tables' memory back at once, and the set works after", () => {
  const set = new RelpathSet(3_000_000); // 4,194,304 slots: 64 MiB of tables
  for (let i = 0; i < 300_000; i++) set.add(`d${i % 1000}/f${i}.txt`, i); // touches every page
  const before = Deno.memoryUsage().rss;
  set.dispose();
  const freed = before - Deno.memoryUsage().rss;
  // Without detaching the buffers nothing is freed until a major garbage collection.
  assert.ok(freed > 32 * 2 ** 20, `freed only ${(freed / 2 ** 20).toFixed(1)} MiB`);
  assert.equal(set.size, 0);
  assert.ok(!set.has("d0/f0.txt"));
  assert.ok(set.add("d0/f0.txt", 7));
  assert.equal(set.get("d0/f0.txt"), 7);
});
