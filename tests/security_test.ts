/**
 * Hostile input: containers and indexes written by an attacker, output
 * folders and source trees set up to trip ctnr. Each table is one kind of
 * attack; each step is named after the attack it blocks and checks the
 * error class, that the message names the entry, and that nothing outside
 * the output folder changed (an empty `sentinel` folder beside it, the
 * files beside it, no `.ctnr-tmp-` file anywhere).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import {
  ContainerFormatError,
  ContainerReader,
  createContainer,
  CtnrError,
  EMPTY_SHA256,
  extractContainer,
  type ExtractOptions,
  IndexFormatError,
  IntegrityError,
  planExtraction,
  UnsafeEntryError,
} from "../mod.ts";
import { encodeFooter, encodeTrailerHeader } from "../lib/format/trailer.ts";
import {
  concatBytes,
  DENO_CHILD_TIMEOUT_MS,
  diffTrees,
  exists,
  fixture,
  listPaths,
  pseudoRandomBytes,
  runCli,
  runCommand,
  TOOL_TIMEOUT_MS,
  type TreeSpec,
  withTempDir,
  writeTree,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const ROOT = new URL("..", import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Paths

const HOSTILE_RELPATHS: { attack: string; relpath: (box: Box) => string }[] = [
  { attack: "zip slip with a leading ..", relpath: () => "../evil.txt" },
  { attack: "zip slip into the sentinel beside the output folder", relpath: () => "../sentinel/x" },
  { attack: "zip slip with .. after a folder", relpath: () => "docs/../../evil.txt" },
  { attack: "zip slip with .. as the last component", relpath: () => "docs/.." },
  { attack: "a relpath of .. alone", relpath: () => ".." },
  { attack: "an absolute path", relpath: () => "/tmp/ctnr-security-evil.txt" },
  { attack: "an absolute path into the sentinel", relpath: (box) => `${box.sentinel}/evil.txt` },
  { attack: "a UNC path", relpath: () => "//server/share/evil.txt" },
  { attack: "a Windows drive letter with a slash", relpath: () => "C:/Windows/evil.txt" },
  { attack: "a Windows drive-relative path", relpath: () => "C:evil.txt" },
  { attack: "a lowercase drive letter", relpath: () => "z:evil.txt" },
  { attack: "zip slip with backslashes", relpath: () => "..\\evil.txt" },
  { attack: "zip slip with backslashes after a folder", relpath: () => "docs\\..\\..\\evil.txt" },
  { attack: "a backslash-rooted path", relpath: () => "\\evil.txt" },
  { attack: "NUL truncation of an extension", relpath: () => "evil.sh\u0000.txt" },
  { attack: "a relpath of NUL alone", relpath: () => "\u0000" },
  { attack: "an empty component", relpath: () => "docs//evil.txt" },
  { attack: "a trailing slash", relpath: () => "docs/" },
  { attack: "a leading ./", relpath: () => "./evil.txt" },
  { attack: "a . component", relpath: () => "docs/./evil.txt" },
  { attack: "a relpath of .", relpath: () => "." },
  { attack: "an empty relpath", relpath: () => "" },
  { attack: "a lone surrogate that has no UTF-8 form", relpath: () => "evil\ud800.txt" },
];

Deno.test("extractContainer refuses hostile relpaths before writing anything", async (t) => {
  for (const { attack, relpath } of HOSTILE_RELPATHS) {
    await t.step(attack, async () => {
      for (const kind of ["file", "dir", "symlink"] as const) {
        for (const layout of LAYOUTS) {
          await withBox(async (box) => {
            const bad = relpath(box);
            const hostile = kind === "file"
              ? file(bad, "evil")
              : kind === "dir"
              ? dir(bad)
              : link(bad, "good.txt");
            await writeContainer(
              box,
              [file("good.txt", "good"), hostile, file("z.txt", "z")],
              layout,
            );
            await assertRefused(box, () => extract(box), {
              error: IndexFormatError,
              names: bad,
              label: `${kind} entry, ${layout} index`,
            });
            await assertRefused(box, () => extract(box, { lenient: true }), {
              error: IndexFormatError,
              names: bad,
              label: `${kind} entry, ${layout} index, lenient`,
            });
            if (bad.startsWith("/")) assert.equal(await exists(bad), false, `${bad} was created`);
          });
        }
      }
      // The CLI exits 1 and names the entry.
      await withBox(async (box) => {
        const bad = relpath(box);
        await writeContainer(box, [file("good.txt", "good"), file(bad, "evil")], "sibling");
        const before = await snapshotOutside(box);
        const run = await runCli("extract", "--container", box.container, "--outdir", box.out);
        assert.equal(run.code, 1, run.stderr);
        // The CLI shows control characters and backslashes escaped (NUL as \x00, \ as \\), as
        // `list` does, so the terminal shows the name in one line.
        const shown = bad.replace(
          // deno-lint-ignore no-control-regex
          /[\x00-\x1f\\]/g,
          (c) =>
            c === "\\"
              ? "\\\\"
              : c === "\n"
              ? "\\n"
              : c === "\t"
              ? "\\t"
              : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
        );
        assert.ok(run.stderr.includes(`"${shown}"`), run.stderr);
        assert.equal(await exists(box.out), false);
        await assertNothingOutside(box, before, "cli");
      });
    });
  }
});

// ---------------------------------------------------------------------------
// Links

const ESCAPING_LINKS: { attack: string; lines: (box: Box) => Line[]; names: string }[] = [
  { attack: "a symlink to an absolute path", lines: () => [link("etc", "/etc")], names: "etc" },
  {
    attack: "a symlink to the sentinel by absolute path",
    lines: (box) => [link("s", box.sentinel)],
    names: "s",
  },
  { attack: "a symlink climbing out with ../..", lines: () => [link("up", "../..")], names: "up" },
  { attack: "a symlink to the folder above", lines: () => [link("up", "..")], names: "up" },
  { attack: "a symlink into the sentinel", lines: () => [link("s", "../sentinel")], names: "s" },
  {
    attack: "a symlink climbing out of a subfolder",
    lines: () => [file("a/b/f.txt", "f"), link("a/b/up", "../../../sentinel")],
    names: "a/b/up",
  },
  {
    attack: "a symlink that dips into a folder before climbing out",
    lines: () => [link("l", "a/../../sentinel")],
    names: "l",
  },
  { attack: "a symlink to a Windows drive", lines: () => [link("w", "C:/Windows")], names: "w" },
  {
    attack: "a symlink whose target climbs with backslashes",
    lines: () => [link("w", "..\\..\\sentinel")],
    names: "w",
  },
  {
    attack: "a symlink chain t -> . then s -> t/..",
    lines: () => [link("t", "."), link("s", "t/..")],
    names: "s",
  },
  {
    attack: "a symlink chain listed in reverse order",
    lines: () => [link("s", "t/../sentinel"), link("t", ".")],
    names: "s",
  },
  {
    attack: "a symlink chain through a link in a subfolder",
    lines: () => [link("a/t", ".."), link("s", "a/t/..")],
    names: "s",
  },
  {
    attack: "a symlink chain of three links",
    lines: () => [link("t", "."), link("u", "t/t"), link("s", "u/../..")],
    names: "s",
  },
  {
    attack: "a symlink chain hidden behind . and empty components",
    lines: () => [link("t", "./"), link("s", "./t//./../sentinel")],
    names: "s",
  },
];

Deno.test("extractContainer refuses symlinks that leave the output folder unless allowUnsafeLinks", async (t) => {
  for (const { attack, lines, names } of ESCAPING_LINKS) {
    await t.step(attack, async () => {
      for (const layout of LAYOUTS) {
        await withBox(async (box) => {
          const all = [file("good.txt", "good"), ...lines(box), file("z.txt", "z")];
          await writeContainer(box, all, layout);
          const error = await assertRefused(box, () => extract(box), {
            error: UnsafeEntryError,
            names,
            label: layout,
          });
          assert.match(error.message, /^Cannot extract symlink /);
          await assertRefused(box, () => extract(box, { dryRun: true }), {
            error: UnsafeEntryError,
            names,
            label: `${layout}, dry run`,
          });

          // Allowed on request: the links are made as stored, and nothing is written through them.
          const before = await snapshotOutside(box);
          await extract(box, { allowUnsafeLinks: true });
          for (const line of all) {
            const entry: Record<string, unknown> = "entry" in line ? line.entry : {};
            if (entry.entry_type !== "symlink") continue;
            const path = `${box.out}/${entry.relpath}`;
            assert.equal(await Deno.readLink(path), entry.link_target, layout);
          }
          assert.equal(await Deno.readTextFile(`${box.out}/good.txt`), "good");
          await assertNothingOutside(box, before, `${layout}, allowUnsafeLinks`);
        });
      }
    });
  }
});

Deno.test("extractContainer refuses a symlink chain through a link already in the output folder", async (t) => {
  await t.step("a chain through a link the user already had", async () => {
    await withBox(async (box) => {
      await Deno.mkdir(box.out);
      await Deno.symlink(".", `${box.out}/t`);
      await writeContainer(box, [file("good.txt", "good"), link("s", "t/../sentinel")], "footer");
      await assertRefused(box, () => extract(box), {
        error: UnsafeEntryError,
        names: "s",
        writesNothing: false,
      });
      assert.equal(await exists(`${box.out}/s`), false);
    });
  });
  await t.step("a chain split across two containers extracted into one folder", async () => {
    await withBox(async (box) => {
      await writeContainer(box, [link("t", ".")], "footer");
      await extract(box);
      await writeContainer(box, [link("s", "t/..")], "footer");
      await assertRefused(box, () => extract(box), {
        error: UnsafeEntryError,
        names: "s",
        writesNothing: false,
      });
      assert.deepEqual(await listPaths(box.out), ["t"]);
    });
  });
});

interface TargetCase {
  attack: string;
  tree: TreeSpec;
  /** Adjust the source tree before it is packed. */
  source?: (src: string) => Promise<void>;
  /** Set up the output folder (and `outside/`) before extracting. */
  prepare: (box: Box) => Promise<void>;
  /** The path the refusal names; absent when the extraction must succeed. */
  refusedAt?: string;
  options?: ExtractOptions;
  /** Checks after a successful extraction. */
  check?: (box: Box) => Promise<void>;
}

const BIG = pseudoRandomBytes((1 << 20) + 4321, 7);

const EXISTING_TARGETS: TargetCase[] = [
  {
    attack: "writing through a symlinked folder in the output folder",
    tree: { "d/f.txt": "payload" },
    prepare: (box) => symlinkIn(box, "d", box.sentinel),
    refusedAt: "d",
  },
  {
    attack: "writing through a symlinked folder two levels down",
    tree: { "a/d/deeper/f.txt": "payload" },
    prepare: (box) => symlinkIn(box, "a/d", "../../sentinel"),
    refusedAt: "a/d",
  },
  {
    attack: "chmod and utime through a symlinked folder (an empty-folder entry)",
    tree: { "d": { dir: true } },
    // A mode and mtime the sentinel does not have, so following the link would show.
    source: async (src) => {
      await Deno.chmod(`${src}/d`, 0o700);
      await Deno.utime(`${src}/d`, 981173106, 981173106);
    },
    prepare: (box) => symlinkIn(box, "d", box.sentinel),
    refusedAt: "d",
  },
  {
    attack: "making a symlink inside a symlinked folder",
    tree: { "d/l": { symlink: "x" } },
    prepare: (box) => symlinkIn(box, "d", box.sentinel),
    refusedAt: "d",
  },
  {
    attack: "overwriting an outside file through a symlink at the target",
    tree: { "f.txt": "new content", "big.bin": BIG },
    prepare: async (box) => {
      await symlinkIn(box, "f.txt", `${box.dir}/outside/secret.txt`);
      await symlinkIn(box, "big.bin", "../outside/big.bin");
    },
    check: checkReplacedByFiles,
  },
  {
    attack: "overwriting an outside file through a hard link at the target",
    tree: { "f.txt": "new content", "big.bin": BIG },
    prepare: async (box) => {
      await Deno.mkdir(box.out);
      await Deno.link(`${box.dir}/outside/secret.txt`, `${box.out}/f.txt`);
      await Deno.link(`${box.dir}/outside/big.bin`, `${box.out}/big.bin`);
    },
    check: async (box) => {
      await checkReplacedByFiles(box);
      assert.equal((await Deno.lstat(`${box.dir}/outside/secret.txt`)).nlink, 1);
      assert.equal((await Deno.lstat(`${box.dir}/outside/big.bin`)).nlink, 1);
    },
  },
  {
    attack: "overwriting a hard-linked outside file with verifyExisting",
    tree: { "f.txt": "new content" },
    options: { verifyExisting: true },
    prepare: async (box) => {
      await Deno.mkdir(box.out);
      await Deno.link(`${box.dir}/outside/secret.txt`, `${box.out}/f.txt`);
    },
    check: async (box) => {
      assert.equal(await Deno.readTextFile(`${box.out}/f.txt`), "new content");
      assert.equal((await Deno.lstat(`${box.dir}/outside/secret.txt`)).nlink, 1);
    },
  },
  {
    attack: "overwriting a hard-linked outside file with skipExisting",
    tree: { "f.txt": "new content" },
    options: { skipExisting: true },
    prepare: async (box) => {
      await Deno.mkdir(box.out);
      await Deno.link(`${box.dir}/outside/secret.txt`, `${box.out}/f.txt`);
    },
    // Same size: kept as it is, which writes nothing anywhere.
    check: async (box) => assert.equal(await Deno.readTextFile(`${box.out}/f.txt`), "old content"),
  },
  {
    attack: "creating an outside file through a dangling symlink at the target",
    tree: { "f.txt": "new content", "big.bin": BIG },
    prepare: async (box) => {
      await symlinkIn(box, "f.txt", "../sentinel/created.txt");
      await symlinkIn(box, "big.bin", `${box.sentinel}/created.bin`);
    },
    check: checkReplacedByFiles,
  },
  {
    attack: "writing into an outside folder through a symlink at a file's path",
    tree: { "f.txt": "new content" },
    prepare: (box) => symlinkIn(box, "f.txt", box.sentinel),
    check: async (box) => assert.equal((await Deno.lstat(`${box.out}/f.txt`)).isFile, true),
  },
  {
    attack: "replacing a symlink entry's path that already holds a symlink to outside",
    tree: { "f.txt": "x", "l": { symlink: "f.txt" } },
    prepare: (box) => symlinkIn(box, "l", box.sentinel),
    check: async (box) => assert.equal(await Deno.readLink(`${box.out}/l`), "f.txt"),
  },
  {
    attack: "overwriting outside files through links while the write workers run",
    tree: manyFiles(600),
    prepare: async (box) => {
      await symlinkIn(box, "many/f100.txt", "../../outside/secret.txt");
      await Deno.link(`${box.dir}/outside/big.bin`, `${box.out}/many/f200.txt`);
      await symlinkIn(box, "many/f300.txt", "../../sentinel/created.txt");
    },
    check: async (box) => {
      for (const n of [100, 200, 300]) {
        const path = `${box.out}/many/f${n}.txt`;
        assert.equal((await Deno.lstat(path)).isFile, true, path);
        assert.equal(await Deno.readTextFile(path), `file ${n}\n`);
      }
    },
  },
];

Deno.test("extractContainer never writes through a link planted at its temp file name", async () => {
  // Temp names are random per run; an attacker who guessed one gets the entry refused, not a
  // write through the link (the temp file is created with O_EXCL).
  for (
    const [what, tree] of [
      ["a small file", { "f.txt": "new content" }],
      ["a big file", { "big.bin": BIG }],
    ] as const
  ) {
    await withBox(async (box) => {
      await writeTree(`${box.dir}/src`, tree);
      await createContainer(`${box.dir}/src`, box.container, { finalize: true });
      await writeTree(`${box.dir}/outside`, { "secret.txt": "old content" });
      await Deno.mkdir(box.out);
      const random = Math.random;
      Math.random = () => 0.5; // the run's tag is then "i": temp files .ctnr-tmp-i-1, -2, ...
      try {
        for (let n = 1; n <= 3; n++) {
          await Deno.symlink(`${box.dir}/outside/secret.txt`, `${box.out}/.ctnr-tmp-i-${n}`);
        }
        const before = await snapshotOutside(box);
        await assert.rejects(extract(box, { concurrency: 0 }), CtnrError, what);
        for (let n = 1; n <= 3; n++) await Deno.remove(`${box.out}/.ctnr-tmp-i-${n}`);
        await assertNothingOutside(box, before, what);
        assert.equal(await Deno.readTextFile(`${box.dir}/outside/secret.txt`), "old content");
      } finally {
        Math.random = random;
      }
    });
  }
});

Deno.test("extractContainer never writes through links already in the output folder", async (t) => {
  for (const c of EXISTING_TARGETS) {
    await t.step(c.attack, async () => {
      for (const compress of [false, true]) {
        await withBox(async (box) => {
          await writeTree(`${box.dir}/src`, c.tree);
          await c.source?.(`${box.dir}/src`);
          await createContainer(`${box.dir}/src`, box.container, { compress, finalize: true });
          await writeTree(`${box.dir}/outside`, {
            "secret.txt": "old content",
            "big.bin": pseudoRandomBytes(BIG.length, 9),
          });
          await c.prepare(box);
          const label = `compress ${compress}`;
          if (c.refusedAt !== undefined) {
            const error = await assertRefused(box, () => extract(box, c.options), {
              error: UnsafeEntryError,
              names: c.refusedAt,
              writesNothing: false,
              label,
            });
            assert.match(error.message, /symlink in the output folder/, label);
            return;
          }
          const before = await snapshotOutside(box);
          await extract(box, c.options);
          await assertNothingOutside(box, before, label);
          await c.check?.(box);
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------
// Collisions

const COLLISIONS: { attack: string; lines: Line[]; names: string }[] = [
  {
    attack: "a duplicate file entry overwriting the first",
    lines: [file("a.txt", "first"), file("a.txt", "second")],
    names: "a.txt",
  },
  {
    attack: "a symlink entry replacing a verified file entry",
    lines: [file("a.txt", "first"), link("a.txt", "elsewhere")],
    names: "a.txt",
  },
  {
    attack: "a file entry replacing a symlink entry",
    lines: [link("a.txt", "elsewhere"), file("a.txt", "first")],
    names: "a.txt",
  },
  { attack: "a duplicate dir entry", lines: [dir("d"), dir("d")], names: "d" },
  {
    attack: "a file entry where a dir entry stands",
    lines: [dir("d"), file("d", "1")],
    names: "d",
  },
  {
    attack: "a dir entry where a file entry stands",
    lines: [file("d", "1"), dir("d")],
    names: "d",
  },
  {
    attack: "a file below a file (x, then x/y)",
    lines: [file("x", "1"), file("x/y", "2")],
    names: "x/y",
  },
  {
    attack: "a file over a folder (x/y, then x)",
    lines: [file("x/y", "1"), file("x", "2")],
    names: "x",
  },
  {
    attack: "a dir entry below a file (x, then dir x/y)",
    lines: [file("x", "1"), dir("x/y")],
    names: "x/y",
  },
  {
    attack: "a file over a folder made by a dir entry (dir x/y, then x)",
    lines: [dir("x/y"), file("x", "1")],
    names: "x",
  },
  {
    attack: "a file below a symlink entry (l, then l/f)",
    lines: [link("l", "elsewhere"), file("l/f", "through the link")],
    names: "l/f",
  },
  {
    attack: "a symlink entry over a folder (l/f, then l)",
    lines: [file("l/f", "1"), link("l", "elsewhere")],
    names: "l",
  },
  {
    attack: "a dir entry below a symlink entry",
    lines: [link("l", "elsewhere"), dir("l/d")],
    names: "l/d",
  },
  {
    attack: "a deep file below a file several entries earlier",
    lines: [file("p/q", "1"), file("r", "2"), file("p/q/r/s", "3")],
    names: "p/q/r/s",
  },
  {
    attack: "NFC and NFD spellings of one name",
    lines: [file("caf\u00e9.txt", "nfc"), file("cafe\u0301.txt", "nfd")],
    names: "cafe\u0301.txt",
  },
  {
    attack: "an NFD file over an NFC folder",
    lines: [file("caf\u00e9/x", "1"), file("cafe\u0301", "2")],
    names: "cafe\u0301",
  },
  {
    attack: "an NFD file below an NFC file",
    lines: [file("caf\u00e9", "1"), file("cafe\u0301/x", "2")],
    names: "cafe\u0301/x",
  },
  {
    attack: "the Kelvin sign and K",
    lines: [file("K", "1"), file("\u212a", "2")],
    names: "\u212a",
  },
  {
    attack: "the Angstrom sign and A with ring",
    lines: [file("\u00c5", "1"), file("\u212b", "2")],
    names: "\u212b",
  },
  {
    attack: "a Hangul syllable and its jamo",
    lines: [file("\uac00", "1"), file("\u1100\u1161", "2")],
    names: "\u1100\u1161",
  },
];

Deno.test("extractContainer refuses colliding entries before writing anything", async (t) => {
  for (const { attack, lines, names } of COLLISIONS) {
    await t.step(attack, async () => {
      for (const layout of LAYOUTS) {
        await withBox(async (box) => {
          await writeContainer(box, [file("first.txt", "1st"), ...lines], layout);
          await assertRefused(box, () => extract(box), {
            error: UnsafeEntryError,
            names,
            label: layout,
          });
          await Deno.mkdir(box.out);
          await assertRefused(box, () => extract(box), {
            error: UnsafeEntryError,
            names,
            label: `${layout}, existing output folder`,
          });
          assert.deepEqual(await listPaths(box.out), []);
        });
      }
    });
  }
  await t.step(
    "names that differ only in case on a case-sensitive folder are no collision",
    async () => {
      await withBox(async (box) => {
        await writeContainer(box, [file("a.txt", "lower"), file("A.txt", "upper")], "footer");
        await extract(box);
        assert.equal(await Deno.readTextFile(`${box.out}/a.txt`), "lower");
        assert.equal(await Deno.readTextFile(`${box.out}/A.txt`), "upper");
      });
    },
  );
});

const FOLDED: { attack: string; lines: Line[]; names: string }[] = [
  {
    attack: "README and readme",
    lines: [file("README", "1"), file("readme", "2")],
    names: "readme",
  },
  {
    attack: "a file over a folder spelled in other case",
    lines: [file("Dir/x", "1"), file("dir", "2")],
    names: "dir",
  },
  {
    attack: "a file below a file spelled in other case",
    lines: [file("dir", "1"), file("DIR/x", "2")],
    names: "DIR/x",
  },
  {
    attack: "an NFD lowercase name against an NFC uppercase one",
    lines: [file("CAF\u00c9", "1"), file("cafe\u0301", "2")],
    names: "cafe\u0301",
  },
  {
    attack: "the Kelvin sign and k",
    lines: [file("k", "1"), file("\u212a", "2")],
    names: "\u212a",
  },
  {
    attack: "a file below a symlink spelled in other case",
    lines: [link("L", "elsewhere"), file("l/f", "through the link")],
    names: "l/f",
  },
  {
    attack: "a symlink chain through a link spelled in other case",
    lines: [link("T", "."), link("s", "t/..")],
    names: "s",
  },
];

Deno.test("planExtraction with foldCase refuses names equal after case folding", async (t) => {
  for (const { attack, lines, names } of FOLDED) {
    await t.step(attack, async () => {
      await withBox(async (box) => {
        await writeContainer(box, lines, "footer");
        const reader = await ContainerReader.open(box.container);
        try {
          await assert.rejects(planExtraction(reader, { foldCase: true }), (error: unknown) => {
            assert.ok(error instanceof UnsafeEntryError, String(error));
            assert.ok(error.message.includes(`"${names}"`), error.message);
            return true;
          });
          // Where case matters (Linux), these are different names.
          const plan = await planExtraction(reader, { foldCase: false });
          assert.equal(plan.entries, lines.length);
        } finally {
          reader.close();
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------
// Numbers

const BAD_NUMBERS: [string, unknown][] = [
  ["negative", -1],
  ["fractional", 1.5],
  ["a numeric string", "12"],
  ["2^53", 2 ** 53],
  ["beyond 2^53", 2 ** 53 + 2],
  ["1e300", 1e300],
  ["null", null],
  ["true", true],
  ["an array", [4]],
  ["an object", { value: 4 }],
  ["missing", undefined],
];

Deno.test("extractContainer refuses out-of-range numbers before writing anything", async (t) => {
  for (const field of ["offset", "payload_size", "orig_size"]) {
    for (const [what, value] of BAD_NUMBERS) {
      await t.step(`${field} ${what}`, async () => {
        await withBox(async (box) => {
          const bad = file("f.txt", "0123456789", { [field]: value });
          await writeContainer(box, [file("good.txt", "good"), bad, file("z.txt", "z")], "sibling");
          const error = await assertRefused(box, () => extract(box), {
            error: IndexFormatError,
            names: "f.txt",
          });
          assert.ok(error.message.includes(`"${field}"`), error.message);
        });
      });
    }
  }

  const raw = (fields: string) =>
    `{"relpath": "f.txt", "sha256": "${EMPTY_SHA256}", "compressed": false, ${fields}}`;
  const RAW_NUMBERS: [string, string, RegExp][] = [
    [
      "an offset of 9007199254740993 (read back as 2^53)",
      raw(`"offset": 9007199254740993, "payload_size": 0, "orig_size": 0`),
      /"offset"/,
    ],
    [
      "an orig_size of 1e400 (read back as Infinity)",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 1e400`),
      /"orig_size"/,
    ],
    [
      "a payload_size of -0.5",
      raw(`"offset": 0, "payload_size": -0.5, "orig_size": 0`),
      /"payload_size"/,
    ],
    [
      "an mtime of 1e400 (read back as Infinity)",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 0, "mtime": 1e400`),
      /"mtime"/,
    ],
    [
      "a mode with more than the permission bits",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 0, "mode": 65535`),
      /"mode"/,
    ],
    [
      "a negative mode",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 0, "mode": -1`),
      /"mode"/,
    ],
    [
      "a mode written as a string",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 0, "mode": "0777"`),
      /"mode"/,
    ],
    [
      "an uncompressed payload_size that differs from orig_size",
      raw(`"offset": 0, "payload_size": 0, "orig_size": 5`),
      /differs from orig_size/,
    ],
    [
      "offset + payload_size beyond 2^53",
      raw(`"offset": 4503599627370496, "payload_size": 4503599627370496, "orig_size": 0`)
        .replace(`"compressed": false`, `"compressed": true`),
      /overflows/,
    ],
    [
      "a dir entry that carries a payload",
      `{"relpath": "d", "entry_type": "dir", "payload_size": 4}`,
      /has a payload/,
    ],
  ];
  for (const [what, line, detail] of RAW_NUMBERS) {
    await t.step(what, async () => {
      await withBox(async (box) => {
        await writeContainer(box, [file("good.txt", "good"), { raw: line }], "footer");
        const error = await assertRefused(box, () => extract(box), {
          error: IndexFormatError,
          names: what.startsWith("a dir") ? "d" : "f.txt",
        });
        assert.match(error.message, detail);
      });
    });
  }

  const PAST_THE_AREA: [string, (area: number) => Record<string, unknown>][] = [
    ["a payload that starts at the end of the payload area", (area) => ({ offset: area })],
    ["a payload one byte longer than the payload area", (area) => ({ offset: area - 9 })],
    [
      "a payload that reads the trailer and the index",
      (area) => ({ offset: area, payload_size: 64, orig_size: 64 }),
    ],
    [
      "a payload at offset 2^53 - 1",
      () => ({ offset: Number.MAX_SAFE_INTEGER, payload_size: 0, orig_size: 0 }),
    ],
    ["a payload of 2^52 bytes", () => ({ offset: 0, payload_size: 2 ** 52, orig_size: 2 ** 52 })],
  ];
  for (const [what, fields] of PAST_THE_AREA) {
    await t.step(what, async () => {
      for (const layout of LAYOUTS) {
        await withBox(async (box) => {
          // "good" and "0123456789": the payload area is 14 bytes.
          const lines = [file("good.txt", "good"), file("f.txt", "0123456789", fields(14))];
          await writeContainer(box, lines, layout);
          await assertRefused(box, () => extract(box), {
            error: ContainerFormatError,
            names: "f.txt",
            label: layout,
          });
        });
      }
    });
  }
});

Deno.test("extractContainer refuses a trailer whose length does not fit the file", async (t) => {
  const payload = encoder.encode("good");
  const index = encoder.encode(indexText([file("good.txt", "good")], 0));
  const u64 = (value: bigint) => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, value, true);
    return bytes;
  };
  const L = index.length;
  const CASES: [string, Uint8Array[]][] = [
    [
      "a footer naming an index longer than the file",
      [payload, encodeTrailerHeader(L), index, encodeFooter(L * 1000)],
    ],
    [
      "a footer naming 2^64 - 1 bytes",
      [payload, encodeTrailerHeader(L), index, u64(2n ** 64n - 1n), encoder.encode("CTNRv1ix")],
    ],
    [
      "a trailer header naming more bytes than its footer",
      [payload, encodeTrailerHeader(L + 1), index, encodeFooter(L)],
    ],
    [
      "a footer naming an index that starts inside the payload area",
      [payload, encodeTrailerHeader(L), index, encodeFooter(L + 2)],
    ],
    ["a footer with no trailer header", [payload, index, encodeFooter(L)]],
    [
      "a trailer header naming an index longer than the file, without a footer",
      [payload, encodeTrailerHeader(L * 1000), index],
    ],
    [
      "a trailer header naming 2^64 - 1 bytes, without a footer",
      [payload, encoder.encode("CTNRv1__"), u64(2n ** 64n - 1n), index],
    ],
    [
      "a trailer header naming fewer bytes than the index, without a footer",
      [payload, encodeTrailerHeader(L - 1), index],
    ],
  ];
  for (const [what, parts] of CASES) {
    await t.step(what, async () => {
      await withBox(async (box) => {
        await Deno.writeFile(box.container, concatBytes(parts));
        const error = await assertRefused(box, () => extract(box), {
          error: ContainerFormatError,
        });
        assert.match(error.message, /trailer|index/);
        const run = await runCli("list", "--container", box.container);
        assert.equal(run.code, 1, run.stderr);
      });
    });
  }
});

// ---------------------------------------------------------------------------
// Structure

Deno.test("extractContainer extracts a cut container correctly or fails with a ContainerFormatError", async (t) => {
  for (const compress of [false, true]) {
    for (const sibling of [false, true]) {
      const what = `${compress ? "gzip" : "plain"} payloads, ${
        sibling ? "sibling index kept" : "embedded index only"
      }`;
      await t.step(what, async () => {
        await withTempDir(async (base) => {
          await writeTree(`${base}/src`, CUT_TREE);
          await createContainer(`${base}/src`, `${base}/made.ctnr`, { compress, finalize: true });
          const bytes = await Deno.readFile(`${base}/made.ctnr`);
          const index = await Deno.readFile(`${base}/made.ctnr.idx`);
          const size = bytes.length;
          const area = size - 32 - index.length;
          const cuts = cutOffsets(bytes, area, index.length);
          let succeeded = 0;
          for (const cut of cuts) {
            await withBox(async (box) => {
              await Deno.writeFile(box.container, bytes.subarray(0, cut));
              if (sibling) await Deno.writeFile(`${box.container}.idx`, index);
              const intact = sibling ? cut >= area : cut === size || cut === size - 16;
              const label = `cut at ${cut} of ${size} (payload area ends at ${area})`;
              if (intact) {
                await extract(box);
                assert.deepEqual(await diffTrees(`${base}/src`, box.out), [], label);
                succeeded++;
              } else {
                await assertRefused(box, () => extract(box), {
                  error: ContainerFormatError,
                  names: sibling ? undefined : box.container,
                  label,
                });
              }
            });
          }
          assert.ok(succeeded >= 2, `${succeeded} cuts extracted`);
        });
      });
    }
  }

  await t.step("a sibling index cut at any byte of its last lines", async () => {
    await withTempDir(async (base) => {
      await writeTree(`${base}/src`, CUT_TREE);
      await createContainer(`${base}/src`, `${base}/made.ctnr`);
      const bytes = await Deno.readFile(`${base}/made.ctnr`);
      const index = await Deno.readFile(`${base}/made.ctnr.idx`);
      const lines = new TextDecoder().decode(index).split("\n").filter(Boolean);
      const from = index.length - lines.at(-1)!.length - lines.at(-2)!.length - 2;
      for (let cut = from; cut <= index.length; cut++) {
        await withBox(async (box) => {
          await Deno.writeFile(box.container, bytes);
          await Deno.writeFile(`${box.container}.idx`, index.subarray(0, cut));
          const expected = completeEntries(index.subarray(0, cut));
          const label = `index cut at ${cut} of ${index.length}`;
          if (expected === null) {
            const error = await assertRefused(box, () => extract(box), {
              error: IndexFormatError,
              names: `${box.container}.idx`,
              label,
            });
            assert.equal(error.code, "INDEX_TORN", label);
            return;
          }
          await extract(box);
          const want = new Set<string>();
          for (const entry of expected) {
            const parts = String(entry.relpath).split("/");
            for (let i = 1; i <= parts.length; i++) want.add(parts.slice(0, i).join("/"));
          }
          assert.deepEqual(await listPaths(box.out), [...want].sort(), label);
          for (const entry of expected) {
            if (entry.entry_type !== undefined) continue;
            assert.deepEqual(
              await Deno.readFile(`${box.out}/${entry.relpath}`),
              await Deno.readFile(`${base}/src/${entry.relpath}`),
              `${label}: ${entry.relpath}`,
            );
          }
        });
      }
    });
  });

  await t.step("the original tool's gzip.ctnr cut anywhere", async () => {
    const bytes = await Deno.readFile(fixture("peer/gzip.ctnr"));
    const magic = lastIndexOfBytes(bytes, encoder.encode("CTNRv1__"));
    const cuts = new Set([0, 1, 100_000, magic - 1, magic, magic + 4, magic + 8, magic + 15]);
    for (let back = 1; back <= 40; back++) cuts.add(bytes.length - back);
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      await withBox(async (box) => {
        await Deno.writeFile(box.container, bytes.subarray(0, cut));
        await assertRefused(box, () => extract(box), {
          error: ContainerFormatError,
          names: box.container,
          label: `cut at ${cut}`,
        });
      });
    }
  });
});

const NOT_UTF8: [string, number[]][] = [
  ["a stray 0xFF byte in a relpath", [0x65, 0xff, 0x2e, 0x74]],
  ["an overlong '/' (C0 AF) smuggling a separator", [0x2e, 0x2e, 0xc0, 0xaf, 0x65, 0x76]],
  ["an overlong '.' (C0 AE)", [0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x65]],
  ["a three-byte overlong '/' (E0 80 AF)", [0x2e, 0x2e, 0xe0, 0x80, 0xaf, 0x65]],
  ["a UTF-16 surrogate encoded in UTF-8 (ED A0 80)", [0x65, 0xed, 0xa0, 0x80]],
  ["a code point beyond U+10FFFF (F4 90 80 80)", [0x65, 0xf4, 0x90, 0x80, 0x80]],
  ["a character cut short inside the line (E6 97)", [0x65, 0xe6, 0x97]],
  ["Latin-1 text (caf E9)", [0x63, 0x61, 0x66, 0xe9]],
];

Deno.test("extractContainer refuses an index that is not UTF-8 before writing anything", async (t) => {
  const good = encoder.encode(indexText([file("good.txt", "good")], 0));
  const last = encoder.encode(indexText([file("z.txt", "")], 4));
  for (const [what, raw] of NOT_UTF8) {
    await t.step(what, async () => {
      const bad = concatBytes([
        encoder.encode(`{"relpath": "`),
        new Uint8Array(raw),
        encoder.encode(
          `", "offset": 0, "payload_size": 0, "orig_size": 0, "sha256": "${EMPTY_SHA256}"}\n`,
        ),
      ]);
      for (const layout of LAYOUTS) {
        await withBox(async (box) => {
          const index = concatBytes([good, bad, last]);
          await writeRawContainer(box, encoder.encode("good"), index, layout);
          const error = await assertRefused(box, () => extract(box, { lenient: true }), {
            error: IndexFormatError,
            names: layout === "sibling" ? `${box.container}.idx` : box.container,
            label: layout,
          });
          assert.match(error.message, /not valid UTF-8/);
        });
      }
    });
  }
  await t.step("a UTF-16LE index with a byte-order mark", async () => {
    const text = indexText([file("good.txt", "good")], 0);
    const utf16 = new Uint8Array(2 + text.length * 2);
    utf16.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) utf16[2 + 2 * i] = text.charCodeAt(i);
    await withBox(async (box) => {
      await writeRawContainer(box, encoder.encode("good"), utf16, "sibling");
      await assertRefused(box, () => extract(box), {
        error: IndexFormatError,
        names: `${box.container}.idx`,
      });
    });
  });
});

Deno.test("extractContainer fails fast with bounded memory on a 200 MB index line", async (t) => {
  // Deno wants --allow-all for /dev/shm; `deno task test` does not grant it.
  const onShm = await exists("/dev/shm").catch(() => false);
  const CASES: [string, "sibling" | "footer", string][] = [
    ["an NDJSON line in a sibling index", "sibling", `{"relpath": "`],
    ["an NDJSON line in the embedded index", "footer", `{"relpath": "`],
    ["a JSON array on one line in a sibling index", "sibling", `[{"relpath": "`],
  ];
  for (const [what, layout, head] of CASES) {
    await t.step(what, async () => {
      const dir = await Deno.makeTempDir(
        onShm ? { dir: "/dev/shm", prefix: "ctnr-test-line-" } : { prefix: "ctnr-test-line-" },
      );
      try {
        const lineBytes = 200 * 1000 * 1000;
        const box: Box = {
          dir,
          container: `${dir}/c.ctnr`,
          out: `${dir}/out`,
          sentinel: `${dir}/sentinel`,
        };
        await Deno.mkdir(box.sentinel);
        const target = layout === "sibling" ? `${box.container}.idx` : box.container;
        const file = await Deno.open(target, { write: true, create: true });
        try {
          if (layout === "footer") await writeAll(file, encodeTrailerHeader(lineBytes));
          const chunk = new Uint8Array(1 << 20).fill(0x61);
          chunk.set(encoder.encode(head));
          for (let done = 0; done < lineBytes;) {
            const n = Math.min(chunk.length, lineBytes - done);
            await writeAll(file, chunk.subarray(0, n));
            chunk.fill(0x61, 0, head.length);
            done += n;
          }
          if (layout === "footer") await writeAll(file, encodeFooter(lineBytes));
        } finally {
          file.close();
        }
        if (layout === "sibling") await Deno.writeFile(box.container, new Uint8Array(0));
        const before = await snapshotOutside(box);
        // No write workers: they load their modules in the measured run (0.3 to 0.5 MB of reads
        // that depend on the code, not on the index).
        const probe = await extractInChild(dir, box.container, box.out, { concurrency: 0 });
        assert.equal(probe.ctnr, true, `not a CtnrError: ${probe.name}: ${probe.message}`);
        assert.equal(probe.name, "IndexFormatError", probe.message);
        assert.ok(probe.ms < 3000, `took ${Math.round(probe.ms)} ms`);
        const mb = (n: number) => `${Math.round(n / 1e6)} MB`;
        assert.ok(probe.rss < 400e6, `rss ${mb(probe.rss)}`);
        assert.ok(probe.peak < 400e6, `peak rss ${mb(probe.peak)} (VmHWM) for a 200 MB line`);
        // The index reader reads 1 MiB at a time and refuses the line once it holds more than
        // the 1 MiB line limit: 2 MiB and 256 bytes of the index (2,097,408 bytes); the NDJSON
        // steps measured 2,097,509 to 2,102,363 bytes. A 2 MiB line limit read 3.4 MB, an 8 MiB
        // one 9.7 MB.
        assert.ok(probe.bytesRead > 0, "the child's reads were not measured");
        assert.ok(
          probe.bytesRead < 2.25 * (1 << 20),
          `read ${probe.bytesRead} bytes of a ${lineBytes}-byte line`,
        );
        await assertNothingOutside(box, before, what);
        assert.equal(await exists(box.out), false);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("extractContainer refuses malformed index lines, and skips them with a warning when lenient", async (t) => {
  const entryLine = indexText([file("evil.txt", "")], 0).trimEnd();
  const MALFORMED: [string, string][] = [
    ["a truncated object", `{"relpath": "evil.txt", "offset": 0`],
    ["a trailing comma", `{"relpath": "evil.txt",}`],
    ["single quotes", `{'relpath': 'evil.txt'}`],
    ["a NaN literal", `{"relpath": "evil.txt", "offset": NaN}`],
    ["two entries on one line", entryLine + entryLine],
    ["a shell command", "rm -rf /"],
    ["a comment hiding an entry", `// ${entryLine}`],
    ["control characters", "\u0001\u0002\u0003"],
  ];
  for (const [what, line] of MALFORMED) {
    await t.step(what, async () => {
      await withBox(async (box) => {
        const lines = [file("good.txt", "good"), { raw: line }, file("z.txt", "z")];
        await writeContainer(box, lines, "sibling");
        const error = await assertRefused(box, () => extract(box), {
          error: IndexFormatError,
          names: `${box.container}.idx`,
        });
        assert.match(error.message, /line 2 is not valid JSON/);

        const warnings: string[] = [];
        const before = await snapshotOutside(box);
        const result = await extract(box, {
          lenient: true,
          onWarning: (message) => warnings.push(message.message),
        });
        assert.equal(result.extracted, 2);
        assert.deepEqual(await listPaths(box.out), ["good.txt", "z.txt"]);
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(warnings[0]!, /Skipped malformed line 2/);
        await assertNothingOutside(box, before, "lenient");
      });
    });
  }
  const NOT_ENTRIES: [string, string, boolean][] = [
    ["a JSON array in the middle", `[${entryLine}]`, false],
    ["a JSON string", `"evil.txt"`, false],
    ["a JSON number", "42", false],
    ["JSON null", "null", false],
    ["an object without a relpath", `{"path": "evil.txt"}`, false],
    ["a JSON array as the first line, which turns the index into one document", "[]", true],
  ];
  for (const [what, line, first] of NOT_ENTRIES) {
    await t.step(`${what} (refused, also when lenient)`, async () => {
      await withBox(async (box) => {
        const lines: Line[] = [file("good.txt", "good"), file("z.txt", "z")];
        lines.splice(first ? 0 : 1, 0, { raw: line });
        await writeContainer(box, lines, "sibling");
        for (const lenient of [false, true]) {
          await assertRefused(box, () => extract(box, { lenient }), {
            error: IndexFormatError,
            names: `${box.container}.idx`,
            label: `lenient ${lenient}`,
          });
        }
      });
    });
  }
});

Deno.test("extractContainer refuses a sha256 that is not 64 hex digits before writing anything", async (t) => {
  const sha = sha256Hex(encoder.encode("0123456789"));
  const BAD_SHA256: [string, unknown][] = [
    ["63 hex digits", sha.slice(1)],
    ["65 hex digits", sha + "0"],
    ["64 characters that are not hex", "g".repeat(64)],
    ["hex with a space inside", sha.slice(0, 30) + " " + sha.slice(31)],
    ["a 0x prefix", "0x" + sha.slice(2)],
    ["a trailing newline", sha.slice(1) + "\n"],
    ["full-width digits", "\uff10".repeat(64)],
    ["a number", 1234],
    ["null", null],
    ["an empty string", ""],
    ["missing", undefined],
  ];
  for (const [what, value] of BAD_SHA256) {
    await t.step(what, async () => {
      for (const field of ["sha256", "orig_sha256"]) {
        // orig_sha256 is optional: null or missing means "not recorded".
        if (field === "orig_sha256" && (value === undefined || value === null)) continue;
        await withBox(async (box) => {
          const bad = file("f.txt", "0123456789", { [field]: value });
          await writeContainer(box, [file("good.txt", "good"), bad], "footer");
          const error = await assertRefused(box, () => extract(box), {
            error: IndexFormatError,
            names: "f.txt",
            label: field,
          });
          assert.ok(error.message.includes(`"${field}"`), error.message);
        });
      }
    });
  }
  await t.step("an uppercase sha256 is the same digest (no refusal)", async () => {
    await withBox(async (box) => {
      const upper = file("f.txt", "0123456789", { sha256: sha.toUpperCase() });
      await writeContainer(box, [upper], "footer");
      await extract(box);
      assert.equal(await Deno.readTextFile(`${box.out}/f.txt`), "0123456789");
    });
  });
});

// ---------------------------------------------------------------------------
// Payloads

interface PayloadCase {
  attack: string;
  /** The victim entry from its original bytes. */
  victim: (original: Uint8Array) => Line;
  error: typeof IntegrityError | typeof IndexFormatError;
  detail: RegExp;
}

const PAYLOAD_CASES: PayloadCase[] = [
  {
    attack: "a payload swapped for other bytes (SHA-256 mismatch)",
    victim: (original) =>
      file("victim.bin", original, { sha256: sha256Hex(encoder.encode("what it should be")) }),
    error: IntegrityError,
    detail: /SHA-256 mismatch/,
  },
  {
    attack: "a gzip payload with a broken deflate block",
    victim: (original) =>
      gzipEntry("victim.bin", original, (gz) => {
        gz[10] = 0xff;
        gz[11] = 0xff;
        gz[12] = 0xff;
      }),
    error: IntegrityError,
    detail: /gzip/,
  },
  {
    attack: "a gzip payload cut short",
    victim: (original) => gzipEntry("victim.bin", original, undefined, (gz) => gz.slice(0, -12)),
    error: IntegrityError,
    detail: /gzip|orig_size/,
  },
  {
    attack: "a gzip payload with a bad CRC-32",
    victim: (original) =>
      gzipEntry("victim.bin", original, (gz) => {
        gz[gz.length - 8] = gz[gz.length - 8]! ^ 0xff;
      }),
    error: IntegrityError,
    detail: /gzip/,
  },
  {
    attack: "a payload marked compressed that is not gzip",
    victim: (original) =>
      file("victim.bin", original, { compressed: true, orig_size: original.length }),
    error: IntegrityError,
    detail: /gzip/,
  },
  {
    attack: "a gzip payload that inflates short of orig_size",
    victim: (original) =>
      gzipEntry("victim.bin", original, undefined, undefined, original.length + 100),
    error: IntegrityError,
    detail: /orig_size/,
  },
  {
    attack: "a gzip payload that inflates past orig_size",
    victim: (original) =>
      gzipEntry("victim.bin", original, undefined, undefined, original.length - 1),
    error: IntegrityError,
    detail: /orig_size/,
  },
  {
    attack: "an uncompressed payload whose payload_size differs from orig_size",
    victim: (original) => file("victim.bin", original, { orig_size: original.length + 1 }),
    error: IndexFormatError,
    detail: /differs from orig_size/,
  },
];

Deno.test("extractContainer refuses payloads that do not match their entry and leaves no file", async (t) => {
  const small = encoder.encode("small but real payload ".repeat(20));
  const large = pseudoRandomBytes((1 << 20) + 999, 3); // over 1 MiB stored: the streaming path
  for (const c of PAYLOAD_CASES) {
    await t.step(c.attack, async () => {
      for (const [size, original] of [["small", small], ["large", large]] as const) {
        await withBox(async (box) => {
          const lines = [file("good.txt", "good"), c.victim(original), file("z.txt", "z")];
          await writeContainer(box, lines, "footer");
          const error = await assertRefused(box, () => extract(box, { chunkSize: 65536 }), {
            error: c.error,
            names: "victim.bin",
            writesNothing: c.error === IndexFormatError,
            label: `${size} payload`,
          });
          assert.match(error.message, c.detail, size);
          assert.equal(await exists(`${box.out}/victim.bin`), false, size);
        });
      }
    });
  }
});

Deno.test("extractContainer refuses overlapping payloads before writing anything (the overlapping-files bomb)", async (t) => {
  const bomb = new Uint8Array(gzipSync(new Uint8Array(1 << 20), { level: 9 }));
  const shared = (relpath: string) => ({
    entry: {
      relpath,
      offset: 0,
      payload_size: bomb.length,
      orig_size: 1 << 20,
      sha256: sha256Hex(bomb),
      compressed: true,
    },
  });
  const cases: [string, Line[], string][] = [
    [
      "200 entries pointing at one gzip payload",
      [
        { entry: { relpath: "f000", compressed: true, orig_size: 1 << 20 }, payload: bomb },
        ...Array.from({ length: 199 }, (_, i) => shared(`f${String(i + 1).padStart(3, "0")}`)),
      ],
      "f001",
    ],
    [
      "a payload starting inside the one before it",
      [
        file("a.txt", "aaaaaaaaaa"),
        {
          entry: { relpath: "b.txt", offset: 5, payload_size: 10, orig_size: 10 },
          payload: encoder.encode("bbbbbbbbbb"),
        },
      ],
      "b.txt",
    ],
    [
      "an index out of offset order pointing back into an earlier payload",
      [
        file("a.txt", "aaaaaaaaaa"),
        file("b.txt", "bbbbbbbbbb"),
        {
          entry: {
            relpath: "c.txt",
            offset: 3,
            payload_size: 4,
            orig_size: 4,
            sha256: sha256Hex(encoder.encode("aaaa")),
          },
        },
      ],
      "c.txt",
    ],
  ];
  for (const [what, lines, named] of cases) {
    await t.step(what, async () => {
      for (const layout of ["sibling", "footer"] as const) {
        await withBox(async (box) => {
          await writeContainer(box, lines, layout);
          const error = await assertRefused(box, () => extract(box), {
            error: UnsafeEntryError,
            names: named,
            label: `${what}, ${layout}`,
          });
          assert.match(error.message, /overlaps the payload of/);
          await assertRefused(box, () => extract(box, { dryRun: true }), {
            error: UnsafeEntryError,
            label: `${what}, ${layout}, dry run`,
          });
        });
      }
    });
  }
  await t.step(
    "empty payloads sharing an offset, and an index in reverse offset order, are fine",
    async () => {
      await withBox(async (box) => {
        await writeContainer(box, [
          {
            entry: {
              relpath: "c.txt",
              offset: 3,
              payload_size: 3,
              orig_size: 3,
              sha256: sha256Hex(encoder.encode("ccc")),
            },
          },
          {
            entry: {
              relpath: "empty1",
              offset: 3,
              payload_size: 0,
              orig_size: 0,
              sha256: EMPTY_SHA256,
            },
          },
          {
            entry: {
              relpath: "b.txt",
              offset: 0,
              payload_size: 3,
              orig_size: 3,
              sha256: sha256Hex(encoder.encode("bbb")),
            },
            payload: encoder.encode("bbbccc"),
          },
          {
            entry: {
              relpath: "empty2",
              offset: 0,
              payload_size: 0,
              orig_size: 0,
              sha256: EMPTY_SHA256,
            },
          },
        ], "footer");
        await extract(box);
        assert.equal(await Deno.readTextFile(`${box.out}/c.txt`), "ccc");
        assert.equal(await Deno.readTextFile(`${box.out}/b.txt`), "bbb");
      });
    },
  );
});

Deno.test("extractContainer refuses, before writing anything, an entry whose path is too long for this system", async (t) => {
  if (Deno.build.os !== "linux") return; // the lengths below are Linux's
  const cases: [string, string][] = [
    ["a name of 256 bytes", `ok/${"n".repeat(256)}`],
    ["a path of over 4,095 bytes", `${"d".repeat(200)}/`.repeat(21) + "f"],
  ];
  for (const [what, relpath] of cases) {
    await t.step(what, async () => {
      await withBox(async (box) => {
        await writeContainer(box, [file("a.txt", "first"), file(relpath, "too long")], "footer");
        const error = await assertRefused(box, () => extract(box), {
          error: UnsafeEntryError,
          label: what,
        });
        assert.match(error.message, /this system allows/);
        assert.ok(error.message.includes(relpath.slice(0, 40)), error.message.slice(0, 200));
        // A dry run (verify) reads the payloads wherever they would go: it is not refused.
        await extract(box, { dryRun: true });
      });
    });
  }
});

Deno.test("planExtraction is linear in a relpath's depth (a line of 15,000 components, 50 times)", async () => {
  await withBox(async (box) => {
    const lines = Array.from(
      { length: 50 },
      (_, i) => file(`b${i}/${"a/".repeat(15_000)}x`, `${i}`),
    );
    await writeContainer(box, lines, "sibling");
    const reader = await ContainerReader.open(box.container);
    try {
      const started = performance.now();
      const plan = await planExtraction(reader);
      const ms = performance.now() - started;
      assert.equal(plan.files, 50);
      // Hashing each of 15,000 folders on its own (quadratic) took minutes here.
      assert.ok(ms < 3000, `the plan took ${Math.round(ms)} ms`);
    } finally {
      reader.close();
    }
  });
});

/** Payloads that are not exactly one gzip member: another reader would read other bytes. */
const NOT_ONE_MEMBER: [string, () => { stored: Uint8Array; origSize: number }][] = [
  ["two members, orig_size of the first (what the original extractor reads)", () => ({
    stored: concatBytes([gzipSync(encoder.encode("first")), gzipSync(encoder.encode("second"))]),
    origSize: 5,
  })],
  ["two members, orig_size of both", () => ({
    stored: concatBytes([gzipSync(encoder.encode("first")), gzipSync(encoder.encode("second"))]),
    origSize: 11,
  })],
  ["two big members (the streamed path)", () => {
    const a = pseudoRandomBytes(700_000, 21);
    return {
      stored: concatBytes([gzipSync(a), gzipSync(pseudoRandomBytes(700_000, 22))]),
      origSize: a.length,
    };
  }],
  ["two identical members (the last trailer is right for the first member alone)", () => ({
    stored: concatBytes([gzipSync(encoder.encode("same")), gzipSync(encoder.encode("same"))]),
    origSize: 4,
  })],
  ["bytes after the member", () => ({
    stored: concatBytes([gzipSync(encoder.encode("data")), encoder.encode("trailing bytes")]),
    origSize: 4,
  })],
  ["a member whose CRC-32 does not match", () => {
    const stored = new Uint8Array(gzipSync(encoder.encode("data")));
    stored[stored.length - 8]! ^= 0xff;
    return { stored, origSize: 4 };
  }],
  ["a member whose size field does not match", () => {
    const stored = new Uint8Array(gzipSync(encoder.encode("data")));
    stored[stored.length - 4]! ^= 0x01;
    return { stored, origSize: 4 };
  }],
  ["a member cut before its trailer", () => {
    const stored = new Uint8Array(gzipSync(encoder.encode("data")));
    return { stored: stored.subarray(0, stored.length - 3), origSize: 4 };
  }],
];

Deno.test("extractContainer refuses a payload that is not exactly one gzip member (two readers, two results)", async (t) => {
  for (const [what, make] of NOT_ONE_MEMBER) {
    await t.step(what, async () => {
      for (const concurrency of [0, 2]) {
        await withBox(async (box) => {
          const { stored, origSize } = make();
          // Its SHA-256 matches: the stored bytes are what the index says; only the member is bad.
          await writeContainer(
            box,
            [file("ok.txt", "ok"), gzipped("bad.gz", stored, origSize)],
            "footer",
          );
          const error = await assertRefused(box, () => extract(box, { concurrency }), {
            error: IntegrityError,
            names: "bad.gz",
            writesNothing: false,
            label: `${what}, concurrency ${concurrency}`,
          });
          assert.match(error.message, /gzip/);
          assert.equal(await exists(`${box.out}/bad.gz`), false);
          const reader = await ContainerReader.open(box.container);
          try {
            const entry = await reader.find("bad.gz");
            await assert.rejects(new Response(reader.open(entry!)).arrayBuffer(), IntegrityError);
          } finally {
            reader.close();
          }
        });
      }
    });
  }
});

Deno.test("extractContainer stops a gzip bomb at orig_size without inflating it", async (t) => {
  await t.step("100 MB of zeros with orig_size 10", async () => {
    const bomb = new Uint8Array(gzipSync(new Uint8Array(100 << 20), { level: 9 }));
    await withBox(async (box) => {
      await writeContainer(box, [gzipped("bomb.bin", bomb, 10)], "footer");
      const started = performance.now();
      const error = await assertRefused(box, () => extract(box), {
        error: IntegrityError,
        names: "bomb.bin",
        writesNothing: false,
      });
      assert.match(error.message, /orig_size 10/);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 2000, `took ${Math.round(elapsed)} ms`);
    });
  });

  await t.step("1 GiB of zeros in a payload under 1 MiB, in a separate process", async () => {
    const bomb = await gzipZeros(1 << 30, new Uint8Array(0));
    assert.ok(bomb.length < 1 << 20, `bomb is ${bomb.length} bytes`);
    await withBox(async (box) => {
      await writeContainer(box, [gzipped("bomb.bin", bomb, 10)], "footer");
      const before = await snapshotOutside(box);
      const probe = await extractInChild(box.dir, box.container, box.out);
      assert.equal(probe.name, "IntegrityError", probe.message);
      assert.ok(probe.message.includes(`"bomb.bin"`), probe.message);
      // Inflating it all would take a 1 GiB buffer and over a second.
      assert.ok(probe.peak < 400e6, `peak rss ${Math.round(probe.peak / 1e6)} MB`);
      assert.ok(probe.ms < 1000, `took ${Math.round(probe.ms)} ms`);
      await assertNothingOutside(box, before, "child");
    });
  });

  await t.step(
    "384 MiB of zeros in a payload under 1 MiB that claims an orig_size of 2 GiB, in a separate process",
    async () => {
      // Held whole in memory, the payload would inflate to 384 MiB: a payload over 4 MiB once
      // inflated is streamed to its temp file instead, whatever its stored size.
      const bomb = await gzipZeros(384 << 20, new Uint8Array(0));
      assert.ok(bomb.length < 1 << 20, `bomb is ${bomb.length} bytes`);
      await withBox(async (box) => {
        await writeContainer(box, [gzipped("bomb.bin", bomb, 2 ** 31)], "footer");
        const before = await snapshotOutside(box);
        const probe = await extractInChild(box.dir, box.container, box.out);
        assert.equal(probe.name, "IntegrityError", probe.message);
        assert.match(probe.message, /"bomb\.bin": gzip payload inflates to 402653184 bytes/);
        assert.ok(probe.peak < 300e6, `peak rss ${Math.round(probe.peak / 1e6)} MB`);
        await assertNothingOutside(box, before, "child");
      });
    },
  );

  await t.step(
    "1 GiB of zeros in a payload over 1 MiB (the streaming path), in a separate process",
    async () => {
      // 16 KiB of noise tips the stored size over 1 MiB, so the payload is streamed.
      const bomb = await gzipZeros(1 << 30, pseudoRandomBytes(16 << 10, 5));
      assert.ok(bomb.length > 1 << 20, `bomb is ${bomb.length} bytes`);
      await withBox(async (box) => {
        await writeContainer(box, [gzipped("bomb.bin", bomb, 10)], "footer");
        const before = await snapshotOutside(box);
        const probe = await extractInChild(box.dir, box.container, box.out, { chunkSize: 65536 });
        assert.equal(probe.name, "IntegrityError", probe.message);
        assert.ok(probe.message.includes(`"bomb.bin"`), probe.message);
        assert.match(probe.message, /orig_size 10/);
        // Inflating it all means reading all of it; stopping at orig_size, a few 64 KiB chunks.
        assert.ok(probe.bytesRead > 0, "the child's reads were not measured");
        assert.ok(
          probe.bytesRead < bomb.length / 4,
          `read ${probe.bytesRead} of ${bomb.length} bytes`,
        );
        assert.ok(probe.peak < 400e6, `peak rss ${Math.round(probe.peak / 1e6)} MB`);
        assert.ok(probe.ms < 1000, `took ${Math.round(probe.ms)} ms`);
        await assertNothingOutside(box, before, "child");
        assert.equal(await exists(`${box.out}/bomb.bin`), false);
      });
    },
  );
});

// ---------------------------------------------------------------------------
// Creation side

Deno.test("main create never opens a FIFO, a socket or a device and never hangs", async (t) => {
  for (const args of [[], ["--compress"], ["--concurrency", "0"]]) {
    await t.step(args.join(" ") || "default options", async () => {
      await withTempDir(async (dir) => {
        await writeTree(`${dir}/src`, { "a.txt": "a", "sub/z.txt": "z" });
        const specials = ["pipe", "sub/pipe"];
        for (const fifo of specials) {
          const made = await runCommand("mkfifo", [`${dir}/src/${fifo}`], {
            timeoutMs: TOOL_TIMEOUT_MS,
          });
          assert.equal(made.code, 0, `mkfifo failed: ${made.stderr}`);
        }
        // A character device like /dev/zero would never end if read; root may make one.
        const mknod = await runCommand("mknod", [`${dir}/src/zero`, "c", "1", "5"], {
          timeoutMs: TOOL_TIMEOUT_MS,
        }).catch(notInstalled);
        if (mknod.code === 0) specials.push("zero");
        // A unix socket left by a process that bound it and exited (no --allow-net needed).
        const bound = await runCommand("python3", [
          "-c",
          "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
          `${dir}/src/sock`,
        ], { timeoutMs: TOOL_TIMEOUT_MS }).catch(notInstalled);
        if (bound.code === 0) specials.push("sock");
        const run = await cliInChild(
          ["create", `${dir}/src`, `${dir}/c.ctnr`, "--finalize", ...args],
          DENO_CHILD_TIMEOUT_MS,
        );
        assert.equal(run.timedOut, false, "create hung on a special file");
        assert.equal(run.code, 0, run.stderr);
        for (const special of specials) {
          assert.ok(
            run.stderr.includes(`"${special}"`),
            `no warning for ${special}: ${run.stderr}`,
          );
        }
        const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
        assert.deepEqual(relpaths, ["a.txt", "sub/z.txt"]);
        await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
        assert.deepEqual(await listPaths(`${dir}/out`), ["a.txt", "sub", "sub/z.txt"]);
      });
    });
  }
});

const BAD_NAMES: {
  attack: string;
  /** Bash commands run in the source folder ($1). */
  script: string;
  /**
   * Relpaths besides ok.txt the index may hold (each at most once), with the bytes they
   * must extract to: a real U+FFFD name may be stored, or refused with its ambiguous twin.
   */
  allowed: Record<string, string>;
}[] = [
  {
    attack: "a file name that is not UTF-8",
    script: `printf bad > "$1"/$'bad\\xff.txt'`,
    allowed: {},
  },
  {
    attack: "a folder name that is not UTF-8",
    script: `mkdir "$1"/$'dir\\xfe' && printf inner > "$1"/$'dir\\xfe'/inner.txt`,
    allowed: {},
  },
  {
    attack: "a name that is not UTF-8 beside one that really is U+FFFD",
    script: `printf A > "$1"/$'a\\xff' && printf B > "$1"/$'a\\xef\\xbf\\xbd'`,
    allowed: { "a\ufffd": "B" },
  },
  {
    attack: "a folder name that is not UTF-8 beside one that really is U+FFFD",
    script: `mkdir "$1"/$'d\\xff' "$1"/$'d\\xef\\xbf\\xbd' && printf A > "$1"/$'d\\xff'/f ` +
      `&& printf B > "$1"/$'d\\xef\\xbf\\xbd'/f`,
    allowed: { "d\ufffd/f": "B" },
  },
  {
    attack: "a symlink whose target is not UTF-8",
    script: `ln -s $'tar\\xffget' "$1"/link`,
    allowed: {},
  },
];

Deno.test("main create reports names that are not UTF-8 with exit 3 and never stores U+FFFD for them", async (t) => {
  for (const { attack, script, allowed } of BAD_NAMES) {
    await t.step(attack, async () => {
      for (const compress of [false, true]) {
        await withTempDir(async (dir) => {
          await writeTree(`${dir}/src`, { "ok.txt": "fine" });
          const made = await runCommand("bash", ["-c", script, "_", `${dir}/src`], {
            timeoutMs: TOOL_TIMEOUT_MS,
          });
          assert.equal(made.code, 0, made.stderr);
          const args = [
            "create",
            `${dir}/src`,
            `${dir}/c.ctnr`,
            ...(compress ? ["--compress"] : []),
          ];
          const run = await runCli(...args);
          const label = `compress ${compress}`;
          assert.equal(run.code, 3, `${label}: exit ${run.code}\n${run.stderr}`);
          assert.match(run.stderr, /not valid UTF-8/, label);
          const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
          assert.equal(new Set(relpaths).size, relpaths.length, `${label}: ${relpaths}`);
          assert.ok(relpaths.includes("ok.txt"), label);
          for (const relpath of relpaths) {
            assert.ok(relpath === "ok.txt" || relpath in allowed, `${label}: stored "${relpath}"`);
          }
          await extractContainer(`${dir}/c.ctnr`, `${dir}/out`);
          for (const relpath of relpaths.filter((r) => r in allowed)) {
            assert.equal(await Deno.readTextFile(`${dir}/out/${relpath}`), allowed[relpath], label);
          }
        });
      }
    });
  }
  await t.step("a name that really is U+FFFD is stored (no false alarm)", async () => {
    await withTempDir(async (dir) => {
      await writeTree(`${dir}/src`, { "ok.txt": "fine", "\ufffd.txt": "replacement char" });
      const run = await runCli("create", `${dir}/src`, `${dir}/c.ctnr`);
      assert.equal(run.code, 0, run.stderr);
      const relpaths = (await readIndex(`${dir}/c.ctnr.idx`)).map((e) => e.relpath);
      assert.deepEqual(relpaths, ["ok.txt", "\ufffd.txt"]);
    });
  });
});

// ---------------------------------------------------------------------------
// Helpers: the box every case runs in

/** A temp folder holding the container, the output folder and an empty sentinel beside it. */
interface Box {
  dir: string;
  container: string;
  out: string;
  /** Empty folder beside the output folder: it must stay empty. */
  sentinel: string;
}

async function withBox(fn: (box: Box) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const box = {
      dir,
      container: `${dir}/c.ctnr`,
      out: `${dir}/out`,
      sentinel: `${dir}/sentinel`,
    };
    await Deno.mkdir(box.sentinel);
    await fn(box);
  });
}

function extract(box: Box, options: ExtractOptions = {}) {
  return extractContainer(box.container, box.out, options);
}

type ErrorClass =
  | typeof IndexFormatError
  | typeof UnsafeEntryError
  | typeof ContainerFormatError
  | typeof IntegrityError;

interface Refusal {
  error: ErrorClass;
  /** What the message must name, in double quotes (the entry, or the index file). */
  names?: string | undefined;
  /** The output folder is refused before anything is written (default true). */
  writesNothing?: boolean;
  label?: string;
}

/**
 * Run `run`, expect it to fail with `expected.error` naming `expected.names`,
 * and check the never-list: nothing outside the output folder changed, no
 * temp file left, and (for a refused index) the output folder not written.
 */
async function assertRefused(
  box: Box,
  run: () => Promise<unknown>,
  expected: Refusal,
): Promise<CtnrError> {
  const label = expected.label ?? "";
  const before = await snapshotOutside(box);
  const outBefore = await listOrNull(box.out);
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `${label}: expected ${expected.error.name}, but it succeeded`);
  assert.ok(
    caught instanceof expected.error,
    `${label}: expected ${expected.error.name}, got ${(caught as Error)?.stack ?? caught}`,
  );
  if (expected.names !== undefined) {
    assert.ok(
      caught.message.includes(`"${expected.names}"`),
      `${label}: message does not name ${JSON.stringify(expected.names)}: ${caught.message}`,
    );
  }
  await assertNothingOutside(box, before, label);
  if (expected.writesNothing ?? true) {
    const outAfter = await listOrNull(box.out);
    if (outBefore === null) {
      assert.ok(outAfter === null || outAfter.length === 0, `${label}: wrote ${outAfter}`);
    } else assert.deepEqual(outAfter, outBefore, `${label}: output folder written`);
  }
  return caught;
}

/** Everything under the box but the output folder, with kind, mode, size, content digest and mtime. */
async function snapshotOutside(box: Box): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  for (const relpath of await listPaths(box.dir)) {
    if (relpath === "out" || relpath.startsWith("out/")) continue;
    const path = `${box.dir}/${relpath}`;
    const info = await Deno.lstat(path);
    const mode = ((info.mode ?? 0) & 0o7777).toString(8);
    const mtime = info.mtime?.getTime();
    snapshot[relpath] = info.isSymlink
      ? `symlink -> ${await Deno.readLink(path)}`
      : info.isDirectory
      ? `dir ${mode} ${mtime}`
      : info.isFile
      ? `file ${mode} ${info.size} ${sha256Hex(await Deno.readFile(path))} ${mtime}`
      : `other ${mode}`;
  }
  return snapshot;
}

async function assertNothingOutside(
  box: Box,
  before: Record<string, string>,
  label: string,
): Promise<void> {
  assert.deepEqual(await listPaths(box.sentinel), [], `${label}: the sentinel is not empty`);
  assert.deepEqual(await snapshotOutside(box), before, `${label}: something outside changed`);
  const temps = (await listPaths(box.dir)).filter((p) => /(^|\/)\.ctnr-(tmp|case-probe)-/.test(p));
  assert.deepEqual(temps, [], `${label}: temp files left`);
}

async function listOrNull(path: string): Promise<string[] | null> {
  return await exists(path) ? await listPaths(path) : null;
}

// ---------------------------------------------------------------------------
// Helpers: hand-made containers

/** One index line: an entry (payload placed, missing fields filled in) or raw text. */
type Line = { entry: Record<string, unknown>; payload?: Uint8Array } | { raw: string };

/** Where the index lives: a sibling `.idx`, a trailer with ctnr's footer, or the original trailer. */
type Layout = "sibling" | "footer" | "legacy";
const LAYOUTS: Layout[] = ["sibling", "footer", "legacy"];

/** A file entry; `fields` override the computed ones (`undefined` drops a field). */
function file(relpath: string, content: string | Uint8Array, fields: Record<string, unknown> = {}) {
  const payload = typeof content === "string" ? encoder.encode(content) : content;
  return { entry: { relpath, ...fields }, payload };
}

function dir(relpath: string): Line {
  return { entry: { relpath, entry_type: "dir" } };
}

function link(relpath: string, target: string): Line {
  return { entry: { relpath, entry_type: "symlink", link_target: target } };
}

/** A compressed file entry: gzip `original`, damage the gzip bytes, and record what it says. */
function gzipEntry(
  relpath: string,
  original: Uint8Array,
  damage?: (gz: Uint8Array) => void,
  replace?: (gz: Uint8Array) => Uint8Array,
  origSize = original.length,
): Line {
  let gz = new Uint8Array(gzipSync(original));
  damage?.(gz);
  if (replace) gz = new Uint8Array(replace(gz));
  return gzipped(relpath, gz, origSize);
}

function gzipped(relpath: string, stored: Uint8Array, origSize: number): Line {
  return file(relpath, stored, { compressed: true, orig_size: origSize });
}

/** The index text: fills in offset, sizes, sha256 and compressed where an entry lacks them. */
function indexText(lines: Line[], start: number): string {
  let offset = start;
  let text = "";
  for (const line of lines) {
    if ("raw" in line) {
      text += line.raw + "\n";
      continue;
    }
    const entry = { ...line.entry };
    if (line.payload !== undefined) {
      const size = line.payload.length;
      const fill = (key: string, value: unknown) => {
        if (!(key in entry)) entry[key] = value;
      };
      fill("offset", offset);
      fill("payload_size", size);
      fill("orig_size", size);
      fill("sha256", sha256Hex(line.payload));
      fill("compressed", false);
      offset += size;
    }
    text += JSON.stringify(entry) + "\n";
  }
  return text;
}

/** Write the box's container (and sibling index) from index lines; returns the index length. */
async function writeContainer(
  box: Box,
  lines: Line[],
  layout: Layout,
): Promise<void> {
  const payloads = concatBytes(
    lines.flatMap((line) => "payload" in line && line.payload ? [line.payload] : []),
  );
  const index = encoder.encode(indexText(lines, 0));
  await writeRawContainer(box, payloads, index, layout);
}

async function writeRawContainer(
  box: Box,
  payloads: Uint8Array,
  index: Uint8Array,
  layout: Layout,
): Promise<void> {
  await Deno.remove(`${box.container}.idx`).catch(() => {});
  if (layout === "sibling") {
    await Deno.writeFile(box.container, payloads);
    await Deno.writeFile(`${box.container}.idx`, index);
    return;
  }
  const parts = [payloads, encodeTrailerHeader(index.length), index];
  if (layout === "footer") parts.push(encodeFooter(index.length));
  await Deno.writeFile(box.container, concatBytes(parts));
}

// ---------------------------------------------------------------------------
// Helpers: the rest

const CUT_TREE: TreeSpec = {
  "a.txt": "alpha",
  "b/c.txt": "see ".repeat(50),
  "b/empty.bin": "",
  "d/e/f.txt": "deep",
  "hollow": { dir: true },
  "link": { symlink: "a.txt" },
  "z.bin": pseudoRandomBytes(3000, 11),
};

/** Offsets to cut a finalized container at: every byte of the header and footer, samples elsewhere. */
function cutOffsets(bytes: Uint8Array, area: number, indexLength: number): number[] {
  const size = bytes.length;
  const cuts = new Set<number>([0, 1, Math.floor(area / 3), Math.floor(area / 2), area - 1]);
  for (let i = area; i <= area + 16; i++) cuts.add(i);
  const indexStart = area + 16;
  for (let i = 1; i < indexLength; i += Math.max(1, Math.floor(indexLength / 23))) {
    cuts.add(indexStart + i);
  }
  for (let i = indexStart; i < indexStart + indexLength; i++) {
    if (bytes[i] === 0x0a) [i, i + 1].forEach((at) => cuts.add(at));
  }
  for (let i = size - 16; i <= size; i++) cuts.add(i);
  return [...cuts].filter((c) => c >= 0 && c <= size).sort((a, b) => a - b);
}

/** The entries a cut NDJSON index still holds whole, or null when its last line is torn. */
function completeEntries(bytes: Uint8Array): Record<string, unknown>[] | null {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  const lines = text.split("\n");
  const tail = lines.pop()!;
  const entries = lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  if (tail.trim() === "") return entries;
  try {
    if (bytes.at(-1)! >= 0x80) return null; // cut inside a character
    entries.push(JSON.parse(tail));
    return entries;
  } catch {
    return null;
  }
}

function manyFiles(n: number): TreeSpec {
  const spec: TreeSpec = {};
  for (let i = 0; i < n; i++) spec[`many/f${String(i).padStart(3, "0")}.txt`] = `file ${i}\n`;
  return spec;
}

async function symlinkIn(box: Box, relpath: string, target: string): Promise<void> {
  const path = `${box.out}/${relpath}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.symlink(target, path);
}

async function checkReplacedByFiles(box: Box): Promise<void> {
  for (const [name, content] of [["f.txt", "new content"], ["big.bin", BIG]] as const) {
    const path = `${box.out}/${name}`;
    assert.equal((await Deno.lstat(path)).isFile, true, `${name} is not a regular file`);
    const expected = typeof content === "string" ? encoder.encode(content) : content;
    assert.deepEqual(await Deno.readFile(path), expected, name);
  }
}

async function readIndex(path: string): Promise<{ relpath: string }[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

/** What a child process saw extracting one container. */
interface ChildProbe {
  ctnr: boolean;
  name: string;
  message: string;
  /** Milliseconds the extraction took. */
  ms: number;
  /** Resident set size in bytes at the end. */
  rss: number;
  /** Peak resident set size in bytes (VmHWM). */
  peak: number;
  /** Bytes the process read from files during the extraction (rchar). */
  bytesRead: number;
}

/**
 * Extract in a fresh Deno process, to measure its time, reads and peak memory alone; a child that
 * runs past {@link DENO_CHILD_TIMEOUT_MS} is killed and fails the test.
 */
async function extractInChild(
  dir: string,
  container: string,
  out: string,
  options: ExtractOptions = {},
): Promise<ChildProbe> {
  const script = `${dir}/probe.ts`;
  await Deno.writeTextFile(
    script,
    `import { CtnrError, extractContainer } from ${
      JSON.stringify(new URL("../mod.ts", import.meta.url).href)
    };
const rchar = async () => Number(/rchar: (\\d+)/.exec(await Deno.readTextFile("/proc/self/io"))?.[1] ?? 0);
// A first run, not measured, so that code Deno loads lazily (and reads from its cache) on first
// use does not count as bytes of the container read.
await extractContainer(Deno.args[0], Deno.args[1] + "-warm", JSON.parse(Deno.args[2])).catch(() => {});
await Deno.remove(Deno.args[1] + "-warm", { recursive: true }).catch(() => {});
const readBefore = await rchar();
const started = performance.now();
let outcome = { ctnr: false, name: "none", message: "it succeeded" };
try {
  await extractContainer(Deno.args[0], Deno.args[1], JSON.parse(Deno.args[2]));
} catch (error) {
  outcome = { ctnr: error instanceof CtnrError, name: error?.constructor?.name, message: String(error?.message).slice(0, 500) };
}
const ms = performance.now() - started;
const bytesRead = await rchar() - readBefore;
const status = await Deno.readTextFile("/proc/self/status");
const peak = Number(/VmHWM:\\s+(\\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
console.log(JSON.stringify({ ...outcome, ms, bytesRead, rss: Deno.memoryUsage().rss, peak }));
`,
  );
  try {
    const run = await runCommand(
      Deno.execPath(),
      ["run", "--allow-all", script, container, out, JSON.stringify(options)],
      { timeoutMs: DENO_CHILD_TIMEOUT_MS, cwd: ROOT },
    );
    assert.equal(run.code, 0, `child failed: ${run.stdout}\n${run.stderr}`);
    return JSON.parse(run.stdout.trim().split("\n").at(-1)!);
  } finally {
    await Deno.remove(script);
  }
}

/**
 * Run the CLI in a child process, killed with SIGKILL after `timeoutMs`; a hang is returned as
 * `timedOut: true` for the caller to assert (it names what hung), not thrown.
 */
async function cliInChild(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stderr: string; timedOut: boolean }> {
  const run = await runCommand(Deno.execPath(), ["run", "--allow-all", `${ROOT}cli.ts`, ...args], {
    timeoutMs,
    cwd: ROOT,
    onTimeout: "return",
  });
  return { code: run.code, stderr: run.stderr, timedOut: run.timedOut };
}

/** A tool that is not installed ran as one that failed; a timeout still fails the test. */
function notInstalled(error: unknown): { code: number } {
  if (error instanceof Deno.errors.NotFound) return { code: -1 };
  throw error;
}

/** gzip `prefix` then `zeros` zero bytes, streaming (the zeros are never held whole). */
async function gzipZeros(zeros: number, prefix: Uint8Array): Promise<Uint8Array> {
  const stream = new CompressionStream("gzip");
  const result = new Response(stream.readable).arrayBuffer();
  const writer = stream.writable.getWriter();
  await writer.write(prefix as Uint8Array<ArrayBuffer>);
  const chunk = new Uint8Array(8 << 20);
  for (let done = 0; done < zeros; done += chunk.length) {
    await writer.write(chunk.subarray(0, Math.min(chunk.length, zeros - done)));
  }
  await writer.close();
  return new Uint8Array(await result);
}

function lastIndexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = haystack.length - needle.length; i >= 0; i--) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let w = 0; w < bytes.length;) w += await file.write(bytes.subarray(w));
}

Deno.test("extract reads each payload of an index in reverse order once, not a 4 MiB window a file", async () => {
  await withTempDir(async (dir) => {
    const spec: Record<string, Uint8Array> = {};
    for (let i = 0; i < 1500; i++) {
      spec[`d/f${String(i).padStart(4, "0")}`] = pseudoRandomBytes(4096, i);
    }
    await writeTree(`${dir}/src`, spec);
    const container = `${dir}/c.ctnr`;
    await createContainer(`${dir}/src`, container);
    // The same entries, last payload first: every small payload is a jump backwards.
    const lines = (await Deno.readTextFile(`${container}.idx`)).trimEnd().split("\n").reverse();
    await Deno.writeTextFile(`${container}.idx`, lines.join("\n") + "\n");
    const probe = await extractInChild(dir, container, `${dir}/out`);
    assert.equal(probe.name, "none", probe.message);
    const stored = (await Deno.stat(container)).size + (await Deno.stat(`${container}.idx`)).size;
    // A 4 MiB window read at every jump read about 3 GB here.
    assert.ok(probe.bytesRead > 0, "the child's reads were not measured");
    assert.ok(probe.bytesRead < 4 * stored, `read ${probe.bytesRead} bytes for ${stored} stored`);
    assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
  });
});
