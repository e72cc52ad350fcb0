/**
 * The named mutants of the standing mutation check (tests/mutants/run.ts):
 * one-line breaks of safety- and durability-critical code, each with the
 * fast test that must fail when it is applied. Grouped by the rule the line
 * enforces. `find` must occur exactly once in lib/, cli/, cli.ts and mod.ts.
 *
 * @module
 */

/** One break of one line, and the test that must catch it. */
export interface Mutant {
  /** Stable name: the rule broken. */
  name: string;
  /** Exact text in lib/, cli/, cli.ts or mod.ts; occurs exactly once. */
  find: string;
  /** What the text becomes. */
  replace: string;
  /** The test that must fail: its file under tests/ and its full name. */
  killedBy: { file: string; test: string };
}

const FORMAT = "format_test.ts";
const SECURITY = "security_test.ts";
const CREATOR = "create_container_test.ts";
const EXTRACTOR = "extract_container_test.ts";
const READER = "container_reader_test.ts";
const INDEX = "index_reader_test.ts";
const POWER = "power_loss_test.ts";
const WRITER = "container_writer_test.ts";
const GUARD = "path_guard_test.ts";
const LINKS = "link_target_test.ts";
const TREE = "output_tree_test.ts";
const OUTPUTS = "output_paths_test.ts";
const AGREEMENT = "index_agreement_test.ts";
const CUT = "cut_container_test.ts";
const REMOTE = "remote_test.ts";
const REMOTE_FAULTS = "remote_faults_test.ts";

/** Every mutant; the runner applies them one at a time. */
export const MUTANTS: Mutant[] = [
  // --- Path rules (lib/safety/relpath.ts, lib/format/entry.ts parseEntry) ---
  {
    name: "relpath-dotdot-allowed",
    find:
      `if (end === start + 2 && relpath.charCodeAt(start + 1) === DOT) return "'..' path component";`,
    replace: `if (false) return "'..' path component";`,
    killedBy: {
      file: FORMAT,
      test: `checkRelpath refuses a '..' component (path traversal): "a/../b"`,
    },
  },
  {
    name: "relpath-dot-allowed",
    find: `if (end === start + 1) return "'.' path component";`,
    replace: `if (false) return "'.' path component";`,
    killedBy: { file: FORMAT, test: `checkRelpath refuses a '.' component: "a/./b"` },
  },
  {
    name: "relpath-empty-component-allowed",
    find: `if (end === start) return "empty path component";`,
    replace: `if (false) return "empty path component";`,
    killedBy: { file: FORMAT, test: `checkRelpath refuses an empty component: "a//b"` },
  },
  {
    name: "relpath-nul-allowed",
    find: `if (relpath.includes("\\0")) return "contains NUL";`,
    replace: ``,
    killedBy: {
      file: FORMAT,
      test: `checkRelpath refuses a NUL byte (truncation attack): "a\\u0000b"`,
    },
  },
  {
    name: "relpath-backslash-allowed",
    find: `if (relpath.includes("\\\\")) return "contains a backslash";`,
    replace: ``,
    killedBy: { file: FORMAT, test: `checkRelpath refuses a backslash traversal: "..\\\\evil"` },
  },
  {
    name: "relpath-drive-letter-allowed",
    find: `if (DRIVE.test(relpath)) return "Windows drive letter";`,
    replace: ``,
    killedBy: { file: FORMAT, test: `checkRelpath refuses a drive-relative path: "C:x"` },
  },
  {
    name: "relpath-ill-formed-unicode-allowed",
    find: `if (!relpath.isWellFormed()) return "not well-formed Unicode";`,
    replace: ``,
    killedBy: { file: FORMAT, test: `checkRelpath refuses a lone high surrogate: "a\\ud800b"` },
  },
  {
    name: "entry-relpath-unchecked",
    find: "if (unsafe) invalidEntry(relpath, where, `unsafe relpath: ${unsafe}`);",
    replace: ``,
    killedBy: {
      file: SECURITY,
      test: "extractContainer refuses hostile relpaths before writing anything",
    },
  },
  // --- Size bounds of an entry ---
  {
    name: "entry-plain-size-mismatch-allowed",
    find: `if (isFile && !compressed && payloadSize !== origSize) {`,
    replace: `if (false) {`,
    killedBy: {
      file: FORMAT,
      test: "parseEntry refuses an uncompressed entry whose payload_size differs from orig_size",
    },
  },
  {
    name: "entry-offset-overflow-allowed",
    find: `if (payloadSize > Number.MAX_SAFE_INTEGER - offset) {`,
    replace: `if (false) {`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer refuses out-of-range numbers before writing anything",
    },
  },
  {
    name: "entry-negative-size-allowed",
    find: `if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {`,
    replace: `if (typeof v !== "number") {`,
    killedBy: { file: FORMAT, test: "parseEntry refuses a file entry whose offset is negative" },
  },
  {
    name: "payload-past-area-allowed",
    find: `if (stop <= end) {`,
    replace: `if (true) {`,
    killedBy: {
      file: READER,
      test:
        "ContainerReader.records refuses an entry whose payload passes the end of the payload area",
    },
  },
  // --- Index line and document limits (lib/format/index_reader.ts) ---
  {
    name: "index-line-limit-8-mib",
    find: `const maxLine = this.#options.maxLineBytes ?? 1 << 20;`,
    replace: `const maxLine = this.#options.maxLineBytes ?? 8 << 20;`,
    killedBy: { file: INDEX, test: "IndexReader stops reading within 2 MiB of an over-long line" },
  },
  {
    name: "index-utf8-not-fatal",
    find: `const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });`,
    replace: `const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });`,
    killedBy: { file: INDEX, test: "IndexReader refuses invalid UTF-8" },
  },
  // --- Collisions (lib/safety/path_guard.ts), on extract and on resume ---
  {
    name: "guard-duplicate-allowed",
    find: `if (this.#seen.getHash(hashes, self) !== undefined) {`,
    replace: `if (false) {`,
    killedBy: { file: GUARD, test: "PathGuard.admit: a duplicate" },
  },
  {
    name: "guard-file-with-children-allowed",
    find: `if (isLeaf && this.#parents.getHash(hashes, self) !== undefined) {`,
    replace: `if (false) {`,
    killedBy: { file: GUARD, test: "PathGuard.admit: a file where a folder is needed" },
  },
  {
    name: "guard-file-as-folder-allowed",
    find: `if (above !== undefined && above !== FOLDER) {`,
    replace: `if (false) {`,
    killedBy: { file: GUARD, test: "PathGuard.admit: a path through a file" },
  },
  {
    name: "guard-nfc-ignored",
    find: `const nfc = relpath.normalize("NFC");`,
    replace: `const nfc = relpath;`,
    killedBy: { file: GUARD, test: "PathGuard.admit: names equal after NFC" },
  },
  {
    name: "guard-case-folding-ignored",
    find: `if (PRINTABLE_ASCII.test(relpath)) return fold ? relpath.toLowerCase() : relpath;`,
    replace: `if (PRINTABLE_ASCII.test(relpath)) return relpath;`,
    killedBy: {
      file: GUARD,
      test: "PathGuard with foldCase refuses names equal after case folding",
    },
  },
  {
    name: "guard-case-folding-simple-lowercase",
    find: `return fold ? foldCase(nfc) : nfc;`,
    replace: `return fold ? nfc.toLowerCase() : nfc;`,
    killedBy: {
      file: GUARD,
      test:
        "pathKey folds case fully (case-insensitive twins refused): sigma and final sigma (exFAT, NTFS: one upper case)",
    },
  },
  {
    name: "guard-case-folding-of-mounts-ignored",
    find: `folding = below.get(key) ?? folding;`,
    replace: `folding = folding;`,
    killedBy: {
      file: GUARD,
      test: "PathGuard with a CaseFolding folds names only below a case-insensitive mount point",
    },
  },
  {
    name: "resume-clash-allowed",
    find:
      `if (clash !== undefined) throw new ConflictError(\`Cannot add "\${entry.relpath}": \${clash}\`);`,
    replace: ``,
    killedBy: {
      file: CREATOR,
      test: "createContainer refuses on resume an item that clashes with a committed entry",
    },
  },
  // --- Link rules (lib/safety/link_target.ts, lib/extract/job.ts #makeLink) ---
  {
    name: "link-absolute-target-allowed",
    find: `if (target.startsWith("/") || /^[A-Za-z]:/.test(target) || target.includes("\\\\")) {`,
    replace: `if (false) {`,
    killedBy: { file: LINKS, test: "checkLinkTarget refuses an absolute target: l -> /etc/passwd" },
  },
  {
    name: "link-climbing-out-allowed",
    find: `if (stack.length === 0) throw refuse("target leaves the output folder");`,
    replace: `if (stack.length === 0) continue;`,
    killedBy: { file: LINKS, test: "checkLinkTarget refuses one level too high: a/l -> ../../x" },
  },
  {
    name: "link-climbing-through-a-link-allowed",
    find:
      'if (throughLink !== undefined) throw refuse(`target climbs out of the link "${throughLink}"`);',
    replace: ``,
    killedBy: {
      file: LINKS,
      test: "checkLinkTarget refuses climbing out through another link (a chain)",
    },
  },
  {
    name: "links-outside-the-selection-unknown-to-link-checks",
    find: `else if (entry.entryType === "symlink" && !options.allowUnsafeLinks) {
          linkKeys.add(key(entry.relpath));
        }`,
    replace: `else if (entry.entryType === "symlink" && !options.allowUnsafeLinks) {
        }`,
    killedBy: {
      file: "selection_test.ts",
      test:
        "extractContainer select refuses a selected link that climbs out through a link it does not select (a symlink chain split by the selection)",
    },
  },
  {
    name: "link-target-not-rechecked-on-disk",
    find: `if (!this.#options.allowUnsafeLinks) {
      // Links already in the output folder`,
    replace: `if (false) {
      // Links already in the output folder`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer refuses a symlink chain through a link already in the output folder",
    },
  },
  // --- The output tree (lib/safety/output_tree.ts) ---
  {
    name: "outdir-symlinked-folder-followed",
    find: `if (info.isDirectory) {
          if (this.#marker?.interruptedBefore) this.#sweep(path);`,
    replace: `if (info.isDirectory || info.isSymlink) {
          if (this.#marker?.interruptedBefore) this.#sweep(path);`,
    killedBy: {
      file: TREE,
      test: "OutputTree.ensureDir makes each folder and refuses a link or a file on the way",
    },
  },
  {
    name: "outdir-case-probe-says-sensitive",
    find: "return await fs.exists(`${base}/${name.toUpperCase()}`);",
    replace: `return false;`,
    killedBy: {
      file: "case_probe_test.ts",
      test: "isCaseInsensitive finds the probe under its upper-case name",
    },
  },
  {
    name: "outdir-case-probe-unused",
    find: `foldCase: folding,`,
    replace: `foldCase: false,`,
    killedBy: {
      file: "case_probe_test.ts",
      test: "extractContainer refuses names equal after case folding on a real exFAT folder",
    },
  },
  {
    name: "mount-points-below-outdir-not-probed",
    find: `mounts.push({ relpath, foldCase: await isCaseInsensitive(point, fs) });`,
    replace: `mounts.push({ relpath, foldCase: false });`,
    killedBy: {
      file: "case_probe_test.ts",
      test:
        "probeCaseFolding probes every mount point below the output folder, found through links",
    },
  },
  {
    name: "rename-over-own-file-allowed",
    find: `if (job.fresh) refuseOwnFile(job);`,
    replace: ``,
    killedBy: {
      file: "case_probe_test.ts",
      test:
        "writeFileJob never renames over a file of this run that the file system folds together with its name (exFAT)",
    },
  },
  {
    name: "folders-met-not-probed-for-folding",
    find: `const folds = made ? this.folderCheck(parent).folds : foldsNames(path);`,
    replace: `const folds = made ? this.folderCheck(parent).folds : false;`,
    killedBy: {
      file: "case_probe_test.ts",
      test:
        "OutputTree checks renames in the folders it makes where names fold: an exFAT mounted below is probed when met",
    },
  },
  // --- Folder modes (lib/create/walk.ts, lib/safety/output_tree.ts) ---
  {
    name: "folder-mode-not-recorded",
    find: `const keepsMode = ((stat.mode ?? DEFAULT_FOLDER_MODE) & 0o777) !== DEFAULT_FOLDER_MODE;`,
    replace: `const keepsMode = false;`,
    killedBy: {
      file: CREATOR,
      test:
        "createContainer records a folder of another mode than 0755 as an entry before its contents, a 0755 one not at all",
    },
  },
  {
    name: "folder-mode-not-applied",
    find:
      `setFolderMeta(check, mode, entry.mtime === undefined ? undefined : toUtime(entry.mtime));`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer keeps a private folder private at every moment: made 0700, its mode set after its contents",
    },
  },
  {
    name: "private-folder-made-open",
    find: `const mode = this.#hasEntry(relDir) ? 0o700 : this.#permissions(DEFAULT_FOLDER_MODE);`,
    replace: `const mode = this.#permissions(DEFAULT_FOLDER_MODE);`,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer keeps a private folder private at every moment: made 0700, its mode set after its contents",
    },
  },
  {
    name: "umask-not-taken-off-modes",
    find: `const umask = samePermissions ? 0 : currentUmask();`,
    replace: `const umask = 0;`,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer takes the umask off recorded modes unless samePermissions (tar -p)",
    },
  },
  // --- Folders swapped while extracting (lib/safety/folder_check.ts) ---
  {
    name: "swapped-folder-not-noticed",
    find:
      `if (info?.isDirectory && info.dev === check.dev && (info.ino ?? 0) === check.ino) return;`,
    replace: `return;`,
    killedBy: {
      file: TREE,
      test:
        "extractContainer stops when a folder is swapped for a link while it extracts (a racing local process)",
    },
  },
  {
    name: "worker-batch-folder-not-checked",
    find: `    checkFolder(folder);
  } catch (error) {`,
    replace: `  } catch (error) {`,
    killedBy: {
      file: "file_writer_test.ts",
      test:
        "writeBatch writes nothing into a folder swapped for a link since the run made it (a racing process)",
    },
  },
  {
    name: "main-thread-batch-folder-not-checked",
    find: `    this.#tree.checkDir(relDir);
    this.#checkedFolder = relDir;`,
    replace: `    this.#checkedFolder = relDir;`,
    killedBy: {
      file: TREE,
      test:
        "extractContainer stops when a folder is swapped for a link while it extracts (a racing local process)",
    },
  },
  {
    name: "folder-mode-set-through-a-swapped-folder",
    find: `if (info.dev !== check.dev || info.ino !== check.ino) throw swapped(check);`,
    replace: ``,
    killedBy: {
      file: TREE,
      test:
        "OutputTree.finishFolders never sets a mode through a folder swapped for a link or another folder",
    },
  },
  {
    name: "temp-file-left-after-failed-large-file",
    find: `await Deno.remove(job.tmp).catch(() => {});`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer verifies every payload on every read path",
    },
  },
  // --- SHA-256 on every read path ---
  {
    name: "sha256-skipped-on-write-worker-path",
    find: `verifyStored(job, payload);
    job.verified = true;`,
    replace: `job.verified = true;`,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer verifies every payload on every read path",
    },
  },
  {
    name: "sha256-skipped-on-main-thread-path",
    find: `if (!job.verified) verifyStored(job, payload);`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer verifies every payload on every read path",
    },
  },
  {
    name: "sha256-skipped-on-stream",
    find:
      `} else if (actual !== sha256) controller.error(sha256Mismatch(relpath, sha256, actual));`,
    replace: `}`,
    killedBy: {
      file: READER,
      test: "ContainerReader.open(entry) errors with IntegrityError on a corrupted payload byte",
    },
  },
  {
    name: "sha256-skipped-on-large-copy",
    find: `if (actual !== entry.sha256) throw sha256Mismatch(entry.relpath, entry.sha256, actual);`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer verifies every payload on every read path",
    },
  },
  {
    name: "sha256-skipped-on-verify-existing",
    find: `return sha256OfExisting(job.target, job.origSize) === expected;`,
    replace: `return true;`,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer verifyExisting re-extracts a wrong same-size file and keeps a correct one",
    },
  },
  {
    name: "sha256-skipped-on-resume-rehash",
    find: `return await sha256OfRange(file, entry.offset, entry.payloadSize) === entry.sha256;`,
    replace: `return true;`,
    killedBy: {
      file: POWER,
      test:
        "createContainer re-hashes the last committed batch on resume and rewrites a payload that reads as zeros",
    },
  },
  // --- gzip bounds ---
  {
    name: "gunzip-small-size-unchecked",
    find: `if (bytes.length !== origSize) throw inflatedSize(relpath, bytes.length, origSize);`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer verifies every payload on every read path",
    },
  },
  {
    name: "gunzip-stream-past-orig-size",
    find: `if (size > origSize) {`,
    replace: `if (false) {`,
    killedBy: {
      file: READER,
      test: "ContainerReader.open(entry) stops a gzip bomb past orig_size with IntegrityError",
    },
  },
  {
    name: "gunzip-stream-short-of-orig-size",
    find: `if (size !== origSize) throw inflatedSize(relpath, size, origSize);`,
    replace: ``,
    killedBy: {
      file: READER,
      test:
        "ContainerReader.open(entry) errors with IntegrityError when gzip inflates short of orig_size",
    },
  },
  // --- Durability order of create (lib/create/container_writer.ts, resume.ts), through the file layer ---
  {
    name: "index-appended-before-container-fsync",
    find: `await this.#guarded(() => container.sync());
      this.#sinceSync = 0;
      await this.#guarded(async () => {`,
    replace: `this.#sinceSync = 0;
      await this.#guarded(async () => {`,
    killedBy: {
      file: CREATOR,
      test: "createContainer appends index batches only after the container is synced",
    },
  },
  {
    name: "index-not-fsynced-after-append",
    find: `await index.sync();`,
    replace: ``,
    killedBy: {
      file: POWER,
      test: "createContainer keeps every committed entry through a power cut at every operation",
    },
  },
  {
    name: "new-container-name-not-fsynced",
    find: `if (!containerExists) await layer.syncFolder(dirname(resolve(container)));`,
    replace: ``,
    killedBy: {
      file: CREATOR,
      test:
        "createContainer makes the names of a new container and index durable before the first payload",
    },
  },
  {
    name: "new-index-name-not-fsynced",
    find: `if (!indexExists) await layer.syncFolder(dirname(resolve(rules.indexPath)));`,
    replace: ``,
    killedBy: {
      file: CREATOR,
      test:
        "createContainer makes the names of a new container and index durable before the first payload",
    },
  },
  {
    name: "recovered-index-not-fsynced",
    find: `await out.sync();
  } finally {
    out.close();
  }
  await layer.rename(tmp, target);`,
    replace: `} finally {
    out.close();
  }
  await layer.rename(tmp, target);`,
    killedBy: {
      file: CREATOR,
      test:
        "createContainer copies a removed index out of the trailer durably before it cuts the trailer",
    },
  },
  {
    name: "trailer-not-fsynced-before-index-removed",
    find: `await container.append(encodeFooter(length));
  await container.sync();`,
    replace: `await container.append(encodeFooter(length));`,
    killedBy: {
      file: CREATOR,
      test: "createContainer makes the trailer durable before it removes the index",
    },
  },
  // --- Resume: re-hash and cut-back (lib/create/resume.ts scanIndex) ---
  {
    name: "resume-keeps-entries-past-the-container-end",
    find: `if (cutAt === undefined && end > containerFile.size) cutAt = previousEnd;`,
    replace: ``,
    killedBy: {
      file: POWER,
      test: "createContainer resumes when the container was cut inside an indexed payload",
    },
  },
  {
    name: "resume-keeps-bytes-past-the-last-payload",
    find: `if (containerFile.size > payloadEnd) {
    const trailer`,
    replace: `if (false) {
    const trailer`,
    killedBy: {
      file: POWER,
      test: "createContainer keeps every committed entry through a power cut at every operation",
    },
  },
  {
    name: "resume-keeps-a-torn-index-line",
    find: `await indexFile.truncate(reader.validLength);`,
    replace: ``,
    killedBy: {
      file: POWER,
      test: "createContainer keeps every committed entry through a power cut at every operation",
    },
  },
  {
    name: "resume-appends-to-a-line-without-newline",
    find: `await indexFile.append(new Uint8Array([0x0a]));`,
    replace: ``,
    killedBy: {
      file: POWER,
      test: "createContainer resumes after a crash tore the index just before a newline",
    },
  },
  {
    name: "resume-overwrites-a-container-without-index",
    find:
      `if (containerFile.size > 0 && !(emptyIndex && await findTrailer(containerFile) === null)) {`,
    replace: `if (false) {`,
    killedBy: {
      file: CREATOR,
      test: "createContainer refuses a non-empty container that has no index and no trailer",
    },
  },
  // --- Trailer detection (lib/format/trailer.ts findTrailer) ---
  {
    name: "trailer-legacy-scan-not-exact",
    find: `if (start + i + TRAILER_HEADER_SIZE + length === size) {`,
    replace: `if (start + i + TRAILER_HEADER_SIZE + length <= size) {`,
    killedBy: { file: FORMAT, test: "findTrailer returns null when there is no trailer" },
  },
  {
    name: "index-name-holds-trailer-magic",
    find: `return json.replaceAll("CTNRv1__", "CTNRv1\\\\u005f_").replace(`,
    replace: `return json.replace(`,
    killedBy: {
      file: FORMAT,
      test: "encodeEntry writes the bytes JSON.stringify of the wire object writes",
    },
  },
  // --- Create never reads its own output ---
  {
    name: "walk-packs-excluded-paths",
    find: `if (options.exclude?.has(path)) return null;`,
    replace: ``,
    killedBy: {
      file: CREATOR,
      test: "createContainer never packs its own container or index",
    },
  },
  // --- Outputs never alias the files a run keeps (lib/safety/output_paths.ts, issue 12) ---
  {
    name: "status-file-may-be-the-container-on-create",
    find: `await refuseSameFile(status, containerFiles(container, settings.indexPath));`,
    replace: ``,
    killedBy: { file: OUTPUTS, test: "create refuses a status file that is the container" },
  },
  {
    name: "status-file-may-be-the-container-on-extract",
    find: `containerFiles(container, options.index),`,
    replace: `[],`,
    killedBy: { file: OUTPUTS, test: "extract refuses a status file that is the container" },
  },
  {
    name: "status-file-may-lie-inside-src",
    find: `await refuseInside(status, { what: "the source folder", path: src });`,
    replace: ``,
    killedBy: { file: OUTPUTS, test: "create refuses a status file inside the source folder" },
  },
  {
    name: "index-may-be-the-container",
    find: `await refuseIndexIsContainer(settings.indexPath, container);`,
    replace: ``,
    killedBy: { file: OUTPUTS, test: "create refuses an index that is the container" },
  },
  {
    name: "index-may-be-the-container-on-finalize-only",
    find: `await refuseIndexIsContainer(indexPath, container);
  // Looked at before either is opened`,
    replace: `// Looked at before either is opened`,
    killedBy: {
      file: OUTPUTS,
      test: "create --finalize-only refuses an index that is the container",
    },
  },
  {
    name: "aliases-compared-without-identity",
    find: `if (a.identity !== undefined && a.identity === b.identity) return "the same file";`,
    replace: ``,
    killedBy: {
      file: OUTPUTS,
      test: "create refuses a status file that is a hard link to the container",
    },
  },
  {
    name: "aliases-compared-without-following-links",
    find: `if (a.final === b.final) return "links lead to it";`,
    replace: ``,
    killedBy: {
      file: OUTPUTS,
      test: "create refuses a status file that is a symlink to the container it will create",
    },
  },
  {
    name: "status-file-renamed-over-a-fifo",
    find: `if ((target.kind === "file" && !target.processFile) || target.kind === "missing") {`,
    replace: `if (true) {`,
    killedBy: {
      file: OUTPUTS,
      test: "a status file that is a FIFO stays a FIFO and its reader gets each status",
    },
  },
  {
    name: "status-file-renamed-over-redirected-stdout",
    find: `if (folder === "/proc" || folder.startsWith("/proc/")) processFile = true;`,
    replace: ``,
    killedBy: {
      file: OUTPUTS,
      test:
        "a status file /dev/stdout or /dev/fd/3 is written to the open file, never renamed over",
    },
  },
  {
    name: "status-file-replaces-its-symlink",
    find: `this.#way = { atomic: target.final };`,
    replace: `this.#way = { atomic: this.#path };`,
    killedBy: {
      file: OUTPUTS,
      test: "a status file that is a symlink keeps the link and its target is written",
    },
  },
  {
    name: "status-file-may-be-a-folder",
    find: `if (target.kind === "folder") {`,
    replace: `if (false) {`,
    killedBy: {
      file: OUTPUTS,
      test: "a status file that is a folder is refused by create and extract",
    },
  },
  {
    name: "recovered-index-replaces-its-symlink",
    find: `const target = isLink ? (await locate(rules.indexPath)).final : rules.indexPath;`,
    replace: `const target = rules.indexPath;`,
    killedBy: {
      file: OUTPUTS,
      test: "create keeps a symlink at the index path when it recovers the index from the trailer",
    },
  },
  {
    name: "walk-reads-its-own-container-by-another-name",
    find: `if (isOwn(info, own)) return { kind: "own" };`,
    replace: ``,
    killedBy: {
      file: OUTPUTS,
      test: "create skips a hard link to its container inside the source, with a warning",
    },
  },
  // --- Intent: --new, --append, a resume of another tree (lib/create/, issue 12) ---
  {
    name: "new-overwrites-a-file-that-is-not-a-container",
    find: `if (trailer !== null) return;
    throw new ConflictError(`,
    replace: `return;
    throw new ConflictError(`,
    killedBy: { file: OUTPUTS, test: "create --new refuses a file that is not a container" },
  },
  {
    name: "new-overwrites-an-index-that-is-not-an-index",
    find: `if (indexExists) await refuseForeignIndex(indexPath);`,
    replace: ``,
    killedBy: { file: OUTPUTS, test: "create --new refuses an index that is not an index" },
  },
  {
    name: "another-tree-merged-into-a-container",
    find: `if (!options.append && !options.fresh) {`,
    replace: `if (false) {`,
    killedBy: {
      file: OUTPUTS,
      test: "create refuses to pack another tree into an existing container",
    },
  },
  {
    name: "resume-of-the-same-tree-refused-past-the-look-ahead",
    find: `if (committed.has(pathKey(item.relpath, false))) return taken;`,
    replace: ``,
    killedBy: {
      file: OUTPUTS,
      test: "create does not refuse a resume whose committed files sort after many new ones",
    },
  },
  {
    name: "missing-from-source-not-reported",
    find: `if (missing > 0) {`,
    replace: `if (false) {`,
    killedBy: {
      file: OUTPUTS,
      test: "create warns about committed entries missing from the source",
    },
  },
  {
    name: "orphan-index-emptied",
    find:
      `if (!rules.fresh && !containerExists && indexExists) await refuseOrphanIndex(container, rules);`,
    replace: ``,
    killedBy: { file: OUTPUTS, test: "create refuses an index whose container does not exist" },
  },
  {
    name: "foreign-index-line-cut-as-torn",
    find: `if (startsAsEntry(head)) return;`,
    replace: `return;`,
    killedBy: {
      file: OUTPUTS,
      test: "create refuses to cut the only line of an index that is not an index",
    },
  },
  // --- Extract durability and crash recovery ---
  {
    name: "extract-fsync-skips-folders",
    find: `if (this.#settings.fsync) await this.#tree.syncFolders();`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer with fsync fsyncs each folder after the renames into it",
    },
  },
  {
    name: "extract-leaves-a-killed-run-s-temp-files",
    find: `if (existed && this.#marker.interruptedBefore) this.#sweep(this.root);`,
    replace: ``,
    killedBy: {
      file: "crash_phase_test.ts",
      test: "extractContainer re-run after a SIGKILL removes the killed run's temp files",
    },
  },
  {
    name: "extract-fsync-skips-small-files",
    find: `if (settings.fsync) file.syncSync();`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test:
        "main extract --fsync fsyncs each file's temp file before its rename, small and large files",
    },
  },
  {
    name: "extract-fsync-skips-large-files",
    find: `if (settings.fsync) await file.sync();`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test:
        "main extract --fsync fsyncs each file's temp file before its rename, small and large files",
    },
  },
  {
    name: "sweep-removes-a-concurrent-run-s-temp-files",
    find: `if (made >= this.#startTime) continue;`,
    replace: ``,
    killedBy: {
      file: TREE,
      test: "OutputTree never sweeps a temp file made after its run started (a concurrent run's)",
    },
  },
  {
    name: "skip-existing-keeps-a-link-of-the-entry-s-size",
    find: `if (!info.isFile || info.size !== job.origSize) return false;`,
    replace: `if (info.size !== job.origSize) return false;`,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer skipExisting keeps only regular files: a link or FIFO of the entry's size is replaced",
    },
  },
  {
    // Deleting the line instead is equivalent: the digest is then compared with null, never
    // equal, so the file is extracted again (after a needless read).
    name: "verify-existing-keeps-an-entry-without-orig-sha256",
    find: `if (expected === null) return false;`,
    replace: `if (expected === null) return true;`,
    killedBy: {
      file: "peer_fixtures_test.ts",
      test:
        "extractContainer verifyExisting re-extracts gzip.ctnr's entries, which have no orig_sha256, instead of keeping a damaged file",
    },
  },
  {
    name: "temp-link-left-after-a-failed-rename",
    find: `Deno.removeSync(job.tmp);
      throw error;`,
    replace: `throw error;`,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer leaves no temp link behind when a link cannot be renamed over a folder",
    },
  },
  {
    name: "extract-goes-on-after-a-failed-entry",
    find: `(this.#firstError !== undefined && !this.#options.keepGoing);`,
    replace: `false;`,
    killedBy: {
      file: EXTRACTOR,
      test:
        "extractContainer without keepGoing stops at a failed entry: the entries after it are not extracted",
    },
  },
  {
    name: "resume-appends-to-a-json-document-index",
    find: `if (document) {`,
    replace: `if (false) {`,
    killedBy: {
      file: CREATOR,
      test: "createContainer refuses to resume over a JSON array index and appends nothing to it",
    },
  },
  {
    name: "finalize-only-trails-a-short-container",
    find: `if (containerFile.size < payloadEnd) {`,
    replace: `if (false) {`,
    killedBy: {
      file: CREATOR,
      test:
        "create --finalize-only refuses a container shorter than its index says and leaves it as it is",
    },
  },
  // --- More bounds: gzip, index documents and lines, the terminal ---
  {
    name: "gunzip-small-payload-unbounded",
    find: `maxOutputLength: origSize + 1,`,
    replace: ``,
    killedBy: {
      file: EXTRACTOR,
      test: "decodePayload stops inflating a gzip payload one byte past orig_size",
    },
  },
  {
    name: "huge-orig-size-inflated-in-memory",
    find: `return entry.payloadSize <= SMALL_PAYLOAD && entry.origSize <= SMALL_ORIGINAL;`,
    replace: `return entry.payloadSize <= SMALL_PAYLOAD;`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer stops a gzip bomb at orig_size without inflating it",
    },
  },
  {
    name: "index-document-size-unbounded",
    find: `if (this.#length > limit) {`,
    replace: `if (false) {`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer fails fast with bounded memory on a 200 MB index line",
    },
  },
  {
    name: "index-line-without-newline-unbounded",
    find: `if (carry.length > maxLine) throw this.#longLine(lineNumber + 1, maxLine);
        continue;`,
    replace: `continue;`,
    killedBy: { file: INDEX, test: "IndexReader stops reading within 2 MiB of an over-long line" },
  },
  {
    name: "trailer-footer-length-unchecked",
    find: `if (equalBytes(foot.subarray(8), FOOTER_MAGIC) && readU64(foot, 0) === length) {`,
    replace: `if (equalBytes(foot.subarray(8), FOOTER_MAGIC)) {`,
    killedBy: {
      file: FORMAT,
      test: "findTrailer with at refuses a footer whose length differs from the header's",
    },
  },
  {
    name: "terminal-control-characters-printed-raw",
    find: `return printable(message);`,
    replace: `return message;`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer refuses hostile relpaths before writing anything",
    },
  },
  {
    name: "temp-file-opened-through-a-planted-link",
    find: `Deno.openSync(job.tmp, { write: true, createNew: true, mode: job.mode });`,
    replace:
      `Deno.openSync(job.tmp, { write: true, create: true, truncate: true, mode: job.mode });`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer never writes through a link planted at its temp file name",
    },
  },
  {
    name: "big-temp-file-opened-through-a-planted-link",
    find: `await Deno.open(job.tmp, { write: true, createNew: true, mode: 0o600 });`,
    replace:
      `await Deno.open(job.tmp, { write: true, create: true, truncate: true, mode: 0o600 });`,
    killedBy: {
      file: SECURITY,
      test: "extractContainer never writes through a link planted at its temp file name",
    },
  },
  {
    name: "trailer-magic-unchecked",
    find: `if (!equalBytes(head.subarray(0, 8), TRAILER_MAGIC)) return null;`,
    replace: ``,
    killedBy: { file: FORMAT, test: "findTrailer with at refuses a header without the magic" },
  },
  // --- The container writer's own rules (lib/create/container_writer.ts) ---
  {
    name: "writer-keeps-the-bytes-of-a-failed-stream",
    find: `await this.#guarded(() => container.truncate(entry.offset));`,
    replace: ``,
    killedBy: {
      file: WRITER,
      test: "ContainerWriter takes back the bytes of a stream that fails, and goes on",
    },
  },
  {
    name: "writer-accepts-an-unsafe-relpath",
    find: `if (unsafe !== undefined) {
      throw new ConflictError(\`Cannot add "\${header.relpath}": unsafe relpath: \${unsafe}\`);
    }`,
    replace: ``,
    killedBy: {
      file: WRITER,
      test: "ContainerWriter refuses relpaths that clash or are unsafe, and goes on",
    },
  },
  {
    name: "writer-forgets-a-failed-write",
    find: `this.#failed ??= error;`,
    replace: ``,
    killedBy: {
      file: WRITER,
      test: "ContainerWriter keeps its first write error and refuses every call after finalize",
    },
  },
  // --- Hostile containers (issue 12) ---
  {
    name: "gzip-trailing-bytes-allowed",
    find: `if (bodyEnd + TRAILER < payloadSize) {`,
    replace: `if (false) {`,
    killedBy: {
      file: SECURITY,
      test:
        "extractContainer refuses a payload that is not exactly one gzip member (two readers, two results)",
    },
  },
  {
    name: "gzip-crc-unchecked",
    find: `if (view.getUint32(0, true) !== inflated.crc >>> 0) {`,
    replace: `if (false) {`,
    killedBy: {
      file: SECURITY,
      test:
        "extractContainer refuses a payload that is not exactly one gzip member (two readers, two results)",
    },
  },
  {
    name: "index-line-breaks-written-raw",
    find: "const NEEDS_ESCAPE = /CTNRv1__|[\\u0085\\u2028\\u2029]/;",
    replace: "const NEEDS_ESCAPE = /CTNRv1__/;",
    killedBy: {
      file: "interop_test.ts",
      test: "encodeEntry escapes every line break of Python's splitlines(), so no entry is lost",
    },
  },
  {
    name: "payload-overlap-in-order-allowed",
    find: `throw overlap(entry.relpath, this.#last!, this.#verb);`,
    replace: `this.#ordered = true;`,
    killedBy: {
      file: SECURITY,
      test:
        "extractContainer refuses overlapping payloads before writing anything (the overlapping-files bomb)",
    },
  },
  {
    name: "payload-overlap-out-of-order-unchecked",
    find: `if (!order.ordered) await checkOverlaps(reader, verb);`,
    replace: ``,
    killedBy: {
      file: SECURITY,
      test:
        "extractContainer refuses overlapping payloads before writing anything (the overlapping-files bomb)",
    },
  },
  {
    name: "output-path-length-unchecked",
    find:
      'if (tooLong) throw new UnsafeEntryError(`Cannot ${verb} "${entry.relpath}": ${tooLong}`);',
    replace: ``,
    killedBy: {
      file: SECURITY,
      test:
        "extractContainer refuses, before writing anything, an entry whose path is too long for this system",
    },
  },
  {
    name: "relpath-length-uncapped",
    find: "if (relpath.length > MAX_RELPATH) return `longer than ${MAX_RELPATH} characters`;",
    replace: ``,
    killedBy: {
      file: FORMAT,
      test: "checkRelpath refuses a relpath longer than 32,767 characters, before any other work",
    },
  },
  {
    name: "second-writer-not-locked-out",
    find: `await lockForWriting(containerFile, container);
    const emptyIndex`,
    replace: `const emptyIndex`,
    killedBy: {
      file: "writer_lock_test.ts",
      test: "ContainerWriter.open throws BusyError while another writer holds the container",
    },
  },
  {
    name: "duplicate-committed-entries-accepted",
    find: `const clash = committed.admit(entry.relpath, fingerprint(entry));
  if (clash === undefined) return;`,
    replace: `return;`,
    killedBy: {
      file: "writer_lock_test.ts",
      test:
        "ContainerWriter.open refuses an index that names a relpath twice, as two runs at once left it",
    },
  },
  {
    name: "writer-commits-a-batch-twice-after-a-callback-throws",
    find: `this.#lines = [];
    this.#pending = [];
    for (const entry of committed) this.#onEntry?.(entry);`,
    replace: `for (const entry of committed) this.#onEntry?.(entry);
    this.#lines = [];
    this.#pending = [];`,
    killedBy: {
      file: WRITER,
      test: "ContainerWriter appends a batch once, even when onEntry throws after its commit",
    },
  },
  // --- Failures of the machine (lib/errors.ts environmentFault, cli/output.ts, cli.ts) ---
  {
    name: "full-disk-not-recognized",
    find: `if (typeof code !== "string" || !(code in ENVIRONMENT_CODES)) return error;`,
    replace: `return error;`,
    killedBy: {
      file: "environment_test.ts",
      test:
        "createContainer on a full disk throws an EnvironmentError and leaves a resumable container",
    },
  },
  {
    name: "writer-write-fault-passed-through-raw",
    find: `const error = environmentFault(
        raw,`,
    replace: `const error = raw ?? environmentFault(
        raw,`,
    killedBy: {
      file: "environment_test.ts",
      test:
        "createContainer on a full disk throws an EnvironmentError and leaves a resumable container",
    },
  },
  {
    name: "closed-stdout-reported-as-an-error",
    find:
      `if (error instanceof Deno.errors.BrokenPipe || (error as { code?: string })?.code === "EPIPE") {`,
    replace: `if (false) {`,
    killedBy: {
      file: "environment_test.ts",
      test: "main list into a closed pipe stops quietly with 141, as cat does",
    },
  },
  {
    name: "sighup-not-handled",
    find: `: (["SIGINT", "SIGTERM", "SIGHUP"] as const);`,
    replace: `: (["SIGINT", "SIGTERM"] as const);`,
    killedBy: {
      file: "crash_test.ts",
      test: "main create stops on SIGHUP with exit 129 after committing its work",
    },
  },
  // --- Reads that cannot hang (lib/create/_source_file.ts, lib/create/stream_source.ts) ---
  {
    name: "source-open-waits-on-a-fifo",
    find:
      `export const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;`,
    replace: `export const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NOFOLLOW;`,
    killedBy: {
      file: "changing_source_test.ts",
      test: "a source path that became a FIFO or a link is never waited on nor followed",
    },
  },
  {
    name: "source-open-follows-a-link",
    find:
      `export const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;`,
    replace: `export const NONBLOCKING_READ = constants.O_RDONLY | constants.O_NONBLOCK;`,
    killedBy: {
      file: "changing_source_test.ts",
      test: "a source path that became a FIFO or a link is never waited on nor followed",
    },
  },
  {
    name: "streamed-file-read-past-its-size",
    find: `const room = Math.min(into.length, limit - read);`,
    replace: `const room = into.length;`,
    killedBy: {
      file: "changing_source_test.ts",
      test: "a file that keeps growing is read only to one byte past its size at open",
    },
  },
  {
    name: "streamed-change-not-read-again",
    find: `if (attempt === READ_TRIES) {`,
    replace: `if (attempt >= 1) {`,
    killedBy: {
      file: "changing_source_test.ts",
      test:
        "a large file that changed while streamed is read again and stored as it is now (compress false)",
    },
  },
  {
    name: "streamed-change-unseen",
    find: `if (after.size !== read || before.size !== read || after.mtimeMs !== before.mtimeMs) {`,
    replace: `if (after.size !== read || before.size !== read) {`,
    killedBy: {
      file: "changing_source_test.ts",
      test:
        "a large file that changes on every read is refused after three reads, leaving no bytes",
    },
  },
  {
    name: "streamed-fifo-stored-empty",
    find: `if (!before.isFile) {`,
    replace: `if (false) {`,
    killedBy: {
      file: "changing_source_test.ts",
      test: "a large file swapped for a FIFO after the walk is refused by name, not stored empty",
    },
  },
  // --- Every command ends promptly on a signal (cli.ts, stream_source.ts, job.ts, gunzip.ts) ---
  {
    name: "list-and-cat-wait-for-a-blocked-write-on-a-signal",
    find: `const signals = command === "list" || command === "cat" || command === "info"`,
    replace: `const signals = command === "never"`,
    killedBy: {
      file: "signals_test.ts",
      test: "main list and cat blocked on a pipe nobody reads end at once on SIGTERM and SIGINT",
    },
  },
  {
    name: "create-finishes-a-large-file-after-a-signal",
    find: `if (signal?.aborted) throw new InterruptedError(stoppedBy(signal));
      const room`,
    replace: `const room`,
    killedBy: {
      file: "signals_test.ts",
      test:
        "createContainer stops inside a large file when its signal is aborted, taking its bytes back",
    },
  },
  {
    name: "extract-finishes-a-large-file-after-a-signal",
    find: `if (signal?.aborted) throw new InterruptedError(stoppedBy(signal));
        report?.(piece.length);`,
    replace: `report?.(piece.length);`,
    killedBy: {
      file: "signals_test.ts",
      test:
        "extractContainer stops inside a large file when its signal is aborted, leaving no temp file",
    },
  },
  {
    name: "gunzip-enqueues-after-the-reader-stopped",
    find: `if (done) return;
        controller.enqueue(`,
    replace: `controller.enqueue(`,
    killedBy: {
      file: READER,
      test: "a reader that stops early (cancel) ends a compressed entry's stream quietly",
    },
  },
  // --- ContainerWriter contract (lib/create/container_writer.ts) ---
  {
    name: "writer-calls-may-overlap",
    find: `if (this.#busy) {`,
    replace: `if (false) {`,
    killedBy: {
      file: WRITER,
      test:
        "ContainerWriter refuses a call made while another is still running: offsets are never given twice",
    },
  },
  {
    name: "writer-writes-a-mode-its-readers-refuse",
    find: `const fault = fieldFault(field, header[field]);
      if (fault !== undefined) {`,
    replace: `const fault = fieldFault(field, header[field]);
      if (false) {`,
    killedBy: {
      file: WRITER,
      test:
        "ContainerWriter refuses a mode, mtime or link target its readers would refuse, naming it",
    },
  },
  {
    name: "writer-finalize-leaves-files-open-on-error",
    find: `      } finally {
        this.#close();
      }
    });`,
    replace: `      } catch (error) {
        throw error;
      }
      this.#close();
    });`,
    killedBy: {
      file: WRITER,
      test: "ContainerWriter.finalize closes its files even when the last commit fails",
    },
  },
  // --- What the CLI prints (cli/output.ts, cli/extract.ts, cli/flags.ts) ---
  {
    name: "option-given-twice-keeps-the-last",
    find: `if (first !== undefined) {`,
    replace: `if (false) {`,
    killedBy: {
      file: "cli_options_test.ts",
      test: "main refuses an option that takes one value given twice, naming it",
    },
  },
  {
    name: "progress-bar-prints-raw-names",
    find: `const name = final ? "" : printable(this.#current);`,
    replace: `const name = final ? "" : this.#current;`,
    killedBy: {
      file: "progress_test.ts",
      test: "ProgressDisplay escapes control and bidi characters of names on the bar",
    },
  },
  {
    name: "keep-going-shows-library-option-names",
    find: `const message = messageWithFlags(error, [EXTRACT, VERIFY]);`,
    replace: `const message = error.message;`,
    killedBy: {
      file: "cli_test.ts",
      test: "main extract --keep-going names flags, not library options, in each entry's error",
    },
  },
  // --- Names ctnr keeps for itself (lib/safety/reserved_names.ts) ---
  {
    name: "reserved-names-extracted",
    find: `if (reserved) throw new UnsafeEntryError(`,
    replace: `if (false) throw new UnsafeEntryError(`,
    killedBy: {
      file: "crash_phase_test.ts",
      test:
        "extractContainer refuses entries named like its run marker or temp files, so no later run removes them",
    },
  },
  {
    name: "reserved-names-packed",
    find: `const reserved = reservedName(item.relpath);
  if (reserved !== undefined) {`,
    replace: `const reserved = reservedName(item.relpath);
  if (false) {`,
    killedBy: {
      file: "crash_phase_test.ts",
      test:
        "createContainer leaves out files named like ctnr's run marker or temp files, with a warning",
    },
  },
  // --- Names Windows cannot write as they are (lib/safety/windows_names.ts) ---
  {
    name: "windows-names-extracted",
    find: `if (windows) throw new UnsafeEntryError(`,
    replace: `if (false) throw new UnsafeEntryError(`,
    killedBy: {
      file: "windows_names_test.ts",
      test: "planExtraction with windowsNames refuses such an entry, naming it; without, plans it",
    },
  },
  {
    name: "windows-names-device-after-a-dot",
    find: `if (DEVICE.test(dot < 0 ? name : name.slice(0, dot))) {`,
    replace: `if (DEVICE.test(name)) {`,
    killedBy: {
      file: "windows_names_test.ts",
      test: "windowsNameFault refuses device names, trailing dots and spaces, forbidden characters",
    },
  },
  // --- A container cut short, one that is none, and an index that disagrees with the trailer
  // (lib/format/trailer.ts searchTrailer, lib/format/index_agreement.ts, lib/read/, cli/extract.ts)
  {
    name: "reader-trusts-a-disagreeing-sibling-index",
    find: `if (origin === "sibling") {`,
    replace: `if (false) {`,
    killedBy: {
      file: AGREEMENT,
      test: "readers refuse a stale .idx beside a finalized container (it would restore a subset)",
    },
  },
  {
    name: "reader-skips-the-scan-for-an-original-tools-trailer",
    find: `if (maxEnd < this.#file.size) {`,
    replace: `if (false) {`,
    killedBy: {
      file: AGREEMENT,
      test:
        "readers refuse a stale .idx beside the original tools' container before writing anything",
    },
  },
  {
    name: "resume-cuts-a-disagreeing-trailer",
    find: `if (container !== undefined) {
    // A trailer at the end that holds other entries than this index`,
    replace: `if (false) {
    // A trailer at the end that holds other entries than this index`,
    killedBy: {
      file: AGREEMENT,
      test:
        "create refuses to resume with a stale .idx beside a finalized container (it would cut the trailer)",
    },
  },
  {
    name: "finalize-cuts-a-disagreeing-trailer",
    find: `await refuseDisagreement(
      "finalize",`,
    replace: `await (async (..._: unknown[]) => null)(
      "finalize",`,
    killedBy: {
      file: AGREEMENT,
      test:
        "create --finalize-only refuses a stale .idx beside a finalized container (it would cut the trailer)",
    },
  },
  {
    name: "index-agreement-decided-on-sizes",
    find: `const same = trailer.indexLength === index.size &&
    await sameBytes(container, trailer.indexOffset, index, 0, index.size);`,
    replace: `const same = trailer.indexLength === index.size;`,
    killedBy: {
      file: AGREEMENT,
      test:
        "indexAgreement tells the trailer's own index from a stale, a longer and a same-size one",
    },
  },
  {
    name: "cut-trailer-read-without-salvage",
    find: `if (options.salvage && search.cut !== null && await linesSurvive(file, search.cut)) {`,
    replace: `if (search.cut !== null && await linesSurvive(file, search.cut)) {`,
    killedBy: {
      file: CUT,
      test: "readers say where a container is cut short and what its index or trailer says",
    },
  },
  {
    name: "cut-trailer-found-in-payload-bytes",
    find: `if (!INDEX_START.includes(first)) return null;`,
    replace: ``,
    killedBy: {
      file: CUT,
      test: "a payload holding CTNRv1__ is not taken for a trailer cut short",
    },
  },
  {
    name: "footer-cut-read-as-a-header-cut",
    find: `if (k <= MAGICS_COMMON && await footerCutAt(source, at)) return null;`,
    replace: ``,
    killedBy: {
      file: CUT,
      test:
        "extract --salvage at every byte of the trailer header and footer and around each index line end",
    },
  },
  {
    name: "salvage-hides-lost-index-lines",
    find:
      `this.#linesLost = !(cut.indexBytes === cut.indexLength - 1 && reader.missingFinalNewline);`,
    replace: `this.#linesLost = false;`,
    killedBy: {
      file: CUT,
      test:
        "extract --salvage at every byte of the trailer header and footer and around each index line end",
    },
  },
  {
    name: "salvage-exits-0-with-entries-left-out",
    find: `if (plan.leftOut > 0 || reader.indexLinesLost) {
      throw salvageError(reader, plan, result, verb);`,
    replace: `if (false) {
      throw salvageError(reader, plan, result, verb);`,
    killedBy: {
      file: CUT,
      test:
        "extract --salvage at every byte of the trailer header and footer and around each index line end",
    },
  },
  {
    name: "verify-stops-at-the-first-fault",
    find: `const keepGoing = verifyOnly || salvage || (values["keep-going"] ?? false);`,
    replace: `const keepGoing = salvage || (values["keep-going"] ?? false);`,
    killedBy: {
      file: "verify_test.ts",
      test: "verify lists every bad entry in one run, then a summary, and exits 1",
    },
  },
  {
    name: "dry-run-writes-the-case-probe",
    find: `const folding = options.dryRun
      ?`,
    replace: `const folding = false
      ?`,
    killedBy: {
      file: EXTRACTOR,
      test: "extractContainer in a dry run writes nothing, not even the case probe's temp file",
    },
  },
  // --- Remote reading (lib/remote/http_source.ts): never a wrong byte from a server ---
  {
    name: "remote-if-match-not-sent",
    find: `if (this.#etag !== undefined) headers.set("If-Match", this.#etag);`,
    replace: ``,
    killedBy: {
      file: REMOTE,
      test:
        "remote: a warm cat is one request with If-Match; never a HEAD or a multi-range; the cache is renamed into place",
    },
  },
  {
    name: "remote-content-range-unchecked",
    find: `if (range === undefined || range.start !== start + got || range.end !== end - 1) {`,
    replace: `if (range === undefined) {`,
    killedBy: {
      file: REMOTE_FAULTS,
      test:
        "remote faults: a dropped Range (200 whole) and a wrong Content-Range are REMOTE_PROTOCOL, not downloaded whole",
    },
  },
  {
    name: "remote-size-unchecked",
    find: `if (size !== this.size) {`,
    replace: `if (false) {`,
    killedBy: {
      file: REMOTE_FAULTS,
      test:
        "remote faults: behind a server that ignores If-Match, a replaced container is REMOTE_CHANGED by its ETag, or by its size without one",
    },
  },
  {
    name: "remote-etag-unchecked",
    find: `if (this.#etag !== undefined && etag !== undefined && etag !== this.#etag) {`,
    replace: `if (false) {`,
    killedBy: {
      file: REMOTE_FAULTS,
      test:
        "remote faults: behind a server that ignores If-Match, a replaced container is REMOTE_CHANGED by its ETag, or by its size without one",
    },
  },
  {
    name: "remote-200-accepted-for-a-range",
    find: `if (start + got !== 0 || end !== this.size) {`,
    replace: `if (false) {`,
    killedBy: {
      file: REMOTE_FAULTS,
      test:
        "remote faults: a dropped Range (200 whole) and a wrong Content-Range are REMOTE_PROTOCOL, not downloaded whole",
    },
  },
  {
    name: "remote-retries-past-the-limit",
    find: `if (failures > retries) {`,
    replace: `if (failures > retries + 1) {`,
    killedBy: {
      file: REMOTE_FAULTS,
      test:
        "remote faults: a body always cut short ends in a named network error after the retries",
    },
  },
];
