import assert from "node:assert/strict";
import { windowsNameFault } from "../lib/safety/windows_names.ts";
import { ContainerReader, createContainer, planExtraction, UnsafeEntryError } from "../mod.ts";
import { withTempDir, writeTree } from "./_helpers.ts";

const REFUSED: [string, RegExp][] = [
  ["CON", /"CON" is a reserved device name on Windows/],
  ["CONIN$", /"CONIN\$" is a reserved device name on Windows/],
  ["a/conout$.txt", /"conout\$.txt" is a reserved device name/],
  ["con", /"con" is a reserved device name/],
  ["Prn", /reserved device name/],
  ["aux.txt", /"aux.txt" is a reserved device name/],
  ["NUL", /reserved device name/],
  ["nul.tar.gz", /"nul.tar.gz" is a reserved device name/],
  ["COM1", /reserved device name/],
  ["com9.log", /reserved device name/],
  ["LPT1", /reserved device name/],
  ["lpt9", /reserved device name/],
  ["COM\u00b9", /reserved device name/],
  ["NUL .txt", /reserved device name/],
  ["docs/con/readme.md", /"con" is a reserved device name/],
  ["a/b/nul.txt", /"nul.txt" is a reserved device name/],
  ["name.", /"name\." ends in a dot, which Windows strips/],
  ["name ", /"name " ends in a space, which Windows strips/],
  ["dir./f", /"dir\." ends in a dot/],
  ["..a.", /ends in a dot/],
  ["a<b", /holds '<', which Windows forbids/],
  ["a>b", /holds '>'/],
  ["a:b", /holds ':'/],
  ['a"b', /holds '"'/],
  ["a|b", /holds '\|'/],
  ["a?b", /holds '\?'/],
  ["a*b", /holds '\*'/],
  ["a\u0001b", /holds U\+0001/],
  ["tab\there", /holds U\+0009/],
  ["new\nline", /holds U\+000A/],
  ["x/\u001f", /holds U\+001F/],
];

const ACCEPTED = [
  "CONSOLE",
  "con2",
  "COM0x",
  "COM10",
  "LPT",
  "xnul",
  "nul_x",
  "a.con",
  "docs/aux-notes.md",
  ".hidden",
  "..a",
  "a .b",
  "a. b",
  "name.txt",
  "caf\u00e9/\u4e2d\u6587.txt",
  "del\u007f",
  "a b/c d",
];

Deno.test("windowsNameFault refuses device names, trailing dots and spaces, forbidden characters", () => {
  for (const [relpath, reason] of REFUSED) {
    const fault = windowsNameFault(relpath);
    assert.ok(fault !== undefined, `${JSON.stringify(relpath)} accepted`);
    assert.match(fault, reason, JSON.stringify(relpath));
  }
});

Deno.test("windowsNameFault accepts names Windows writes as they are", () => {
  for (const relpath of ACCEPTED) {
    assert.equal(windowsNameFault(relpath), undefined, JSON.stringify(relpath));
  }
});

Deno.test("planExtraction with windowsNames refuses such an entry, naming it; without, plans it", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "ok.txt": "fine", "docs/nul.txt": "a device on Windows" });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const reader = await ContainerReader.open(`${dir}/c.ctnr`);
    try {
      await assert.rejects(planExtraction(reader, { windowsNames: true }), (error: unknown) => {
        assert.ok(error instanceof UnsafeEntryError, String(error));
        assert.equal(
          error.message,
          'Cannot extract "docs/nul.txt": "nul.txt" is a reserved device name on Windows',
        );
        return true;
      });
      const plan = await planExtraction(reader, { windowsNames: false });
      assert.equal(plan.files, 2);
      assert.equal((await planExtraction(reader)).files, 2, "off by default");
    } finally {
      reader.close();
    }
  });
});
