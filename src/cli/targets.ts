/**
 * Every file a command will write, checked before any work: folders created (and removed again on
 * failure when this run created them), existing files refused without --force, each folder probed
 * for writing. Errors name the path the user gave, never a temp name.
 */
import { closeSync, existsSync, mkdirSync, openSync, rmSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { externalDataFiles, loadModel, type OnnxModel } from '../onnx/io.js';
import { openModel } from '../onnx/lazy.js';
import { realPathOf } from '../onnx/paths.js';
import { CliError } from './errors.js';
import { onInterrupt } from './interrupt.js';

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a path component is not a folder',
  ENOENT: 'folder not found',
  EISDIR: 'is a folder',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
};

/** The reason of a failed write, without the temp file names the ONNX layer writes through. */
export function writeFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code && ERRNO_TEXT[code]) return ERRNO_TEXT[code];
  return ((e as Error).message ?? String(e)).replace(/\S*\.tmp-\d+\S*/g, '(temp file)');
}

/** A file's device and inode, or undefined when there is none: which file a path names now. */
function inode(p: string): string | undefined {
  try {
    const st = statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export interface OutputTarget {
  /** As the user gave it (or as the default was derived), for messages. */
  path: string;
  /** What it is, for messages: 'pruned model', 'external data', 'report'. */
  what: string;
}

/**
 * A command's input model. Opened, not read whole: sessions, surgery and the save read the weights
 * from the file, so memory holds onnxruntime's copy only. Read whole when `out` (the model the
 * command writes) replaces it: the save renames the new file over the one they would be read from.
 */
export function openInput(modelPath: string, out?: string): OnnxModel {
  return out !== undefined && realPathOf(out) === realPathOf(modelPath) ? loadModel(modelPath) : openModel(modelPath);
}

/**
 * Refuses, before any work and `--force` or not, a target that would land on a file the input model
 * reads: the model file itself or one of its external-data files (a lazily opened model reads its
 * weights from them until the outputs are written). `hint` says which option to change.
 */
export function refuseOutputsOnInput(model: OnnxModel, modelPath: string, targets: OutputTarget[], hint: string): void {
  const input = realPathOf(modelPath);
  const reads = new Set([input, ...externalDataFiles(model).keys()]);
  for (const t of targets) {
    const at = realPathOf(t.path);
    if (reads.has(at)) throw new CliError(`${t.what} ${t.path} would replace ${at === input ? 'the input model' : 'an external-data file the input model reads'}; ${hint}`);
  }
}

export class Outputs {
  private readonly created: string[] = [];
  private readonly written: string[] = [];
  private readonly release: () => void;

  /**
   * Checks `files` and creates `folders` (and the files' folders). Throws a CliError naming the
   * first target that cannot be written, after removing any folder it created.
   */
  constructor(files: OutputTarget[], folders: OutputTarget[], force: boolean) {
    this.release = onInterrupt(() => this.discard());
    try {
      for (const f of folders) this.makeFolder(f.path, f);
      for (const f of files) this.makeFolder(dirname(f.path), f);
      for (const f of files) {
        const abs = resolve(f.path);
        if (existsSync(abs)) {
          if (statSync(abs).isDirectory()) throw new CliError(`${f.what} ${f.path} is a folder`);
          if (!force) throw new CliError(`${f.path} already exists; pass --force to replace it`);
        }
      }
      const probed = new Set<string>();
      for (const f of [...folders.map((d) => ({ dir: d.path, t: d })), ...files.map((t) => ({ dir: dirname(t.path), t }))]) {
        const dir = resolve(f.dir);
        if (probed.has(dir)) continue;
        probed.add(dir);
        this.probe(dir, f.dir, f.t);
      }
    } catch (e) {
      this.discard();
      throw e;
    }
  }

  private makeFolder(dir: string, t: OutputTarget): void {
    const abs = resolve(dir);
    // The missing folders on the way, deepest first: the ones to remove again on failure.
    const missing: string[] = [];
    for (let p = abs; ; p = dirname(p)) {
      if (existsSync(p)) {
        if (!statSync(p).isDirectory()) throw new CliError(`${t.what} ${t.path}: ${p} is not a folder`);
        break;
      }
      missing.push(p);
      if (dirname(p) === p) break;
    }
    if (!missing.length) return;
    try {
      mkdirSync(abs, { recursive: true });
    } catch (e) {
      throw new CliError(`${t.what} ${t.path}: cannot create folder ${dir}: ${writeFailure(e)}`);
    }
    this.created.push(...missing);
  }

  private probe(abs: string, shown: string, t: OutputTarget): void {
    const file = resolve(abs, `.fairprune-write-check-${process.pid}`);
    try {
      closeSync(openSync(file, 'wx'));
      unlinkSync(file);
    } catch (e) {
      throw new CliError(`${t.what} ${t.path}: cannot write in folder ${shown}: ${writeFailure(e)}`);
    }
  }

  /**
   * Writes one target through `write`; a failure names the target and undoes this run's outputs.
   * Of `alsoWrites` (files the write may also produce), only those this write created or replaced
   * are removed on failure: a file that was there before and is still the same file is not ours
   * (it may be the user's, or the input itself).
   */
  write(t: OutputTarget, write: () => void, alsoWrites: string[] = []): void {
    const before = new Map(alsoWrites.map((p) => [p, inode(p)]));
    try {
      write();
      this.written.push(resolve(t.path), ...alsoWrites.map((p) => resolve(p)));
    } catch (e) {
      for (const p of alsoWrites) {
        const now = inode(p);
        if (now !== undefined && now !== before.get(p) && !this.written.includes(resolve(p))) rmSync(p, { force: true });
      }
      this.discard();
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot write ${t.what} ${t.path}: ${writeFailure(e)}`);
    }
  }

  /** Everything was written: nothing to undo any more. */
  done(): void {
    this.release();
  }

  /** Removes what this run wrote and the folders it created. */
  discard(): void {
    for (const f of this.written.splice(0)) rmSync(f, { force: true });
    // Deepest first, so a folder is empty when its turn comes.
    for (const d of this.created.splice(0).sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(d, { recursive: false });
      } catch {
        // Not empty: something else is in it now; leave it.
      }
    }
    this.release();
  }
}
