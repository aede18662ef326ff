/**
 * Writing outputs with nothing lost and nothing left behind: every output is written to a temp
 * file beside its target, fsync'ed, then published. Publishing without `overwrite` is exclusive
 * (a hard link, which fails if the target exists), so two writers to one target cannot both win;
 * with `overwrite` it is a rename. Temp files are removed on error and when the process gets
 * SIGINT or SIGTERM, and temp files left by dead processes (SIGKILL, power loss) are swept from the
 * folder on the next save there.
 */
import { closeSync, copyFileSync, constants as fsConstants, fsyncSync, linkSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { OutputExistsError } from './errors.js';

/** Temp files are named `<target>.fairprune-tmp-<pid>-<n>`: distinctive, so the sweep removes only ours. */
const TEMP_MARK = '.fairprune-tmp-';
const TEMP_RE = /\.fairprune-tmp-(\d+)-\d+$/;
/** A temp file of a dead process is swept only when also untouched this long (a writer in another pid namespace keeps touching its file). */
const STALE_MS = 10_000;

/**
 * Fault injection for tests: called before every write with the file being written; throwing
 * from it makes that write fail (ENOSPC, EIO) exactly where a full disk would.
 */
export const ioFaults: { beforeWrite?: (file: string, bytes: number) => void } = {};

let counter = 0;
const liveTemps = new Set<string>();
let signalsHooked = false;

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function onSignal(signal: NodeJS.Signals): void {
  for (const f of liveTemps) removeQuietly(f);
  liveTemps.clear();
  // Keep the default outcome (the process ends by this signal) unless the program listens itself.
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

/**
 * Registers a temp file for removal on SIGINT/SIGTERM. The listeners, once installed, stay for the
 * life of the process: a listener removed right after a synchronous save would drop a signal that
 * arrived during it (Node queues it until the save returns). When the program has no listener of
 * its own, ours re-raises the signal after cleaning up, so the process still ends by it.
 */
function trackTemp(file: string): void {
  if (!signalsHooked) {
    signalsHooked = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  liveTemps.add(file);
}

function untrackTemp(file: string): void {
  liveTemps.delete(file);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files of dead processes from a folder; returns the files removed. */
export function sweepStaleTemps(dir: string, now = Date.now()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const file = join(dir, name);
    try {
      const st = statSync(file);
      if (!st.isFile() || now - st.mtimeMs < STALE_MS) continue;
      unlinkSync(file);
      removed.push(file);
    } catch {
      // raced with another sweeper
    }
  }
  return removed;
}

/** A temp file being written for `target`. */
export class TempFile {
  readonly path: string;
  private fd: number | undefined;

  constructor(readonly target: string) {
    this.path = join(dirname(target), `${basename(target)}${TEMP_MARK}${process.pid}-${++counter}`);
    trackTemp(this.path);
    try {
      this.fd = openSync(this.path, 'wx');
    } catch (e) {
      untrackTemp(this.path);
      throw e;
    }
  }

  write(bytes: Uint8Array): void {
    ioFaults.beforeWrite?.(this.path, bytes.byteLength);
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(this.fd!, bytes, done, bytes.byteLength - done);
  }

  /** Flushes to disk and closes; the file stays a temp until published. */
  finish(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Moves the finished temp file to its target. Without `overwrite` the target must not exist,
   * checked atomically by the link itself; `display` is the name errors use.
   */
  publish(overwrite: boolean, display = this.target): void {
    this.finish();
    if (overwrite) {
      renameSync(this.path, this.target);
    } else {
      try {
        linkSync(this.path, this.target);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new OutputExistsError(display, 'already exists');
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw e;
        // A file system without hard links: an exclusive copy is still exclusive.
        try {
          copyFileSync(this.path, this.target, fsConstants.COPYFILE_EXCL);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') throw new OutputExistsError(display, 'already exists');
          throw e2;
        }
      }
      unlinkSync(this.path);
    }
    untrackTemp(this.path);
  }

  /** Closes and removes the temp file (on error). */
  discard(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // closing is best effort on the error path
      }
      this.fd = undefined;
    }
    removeQuietly(this.path);
    untrackTemp(this.path);
  }
}

export interface WriteFileOptions {
  /** Replace an existing file (default false: an existing file is an OutputExistsError). */
  overwrite?: boolean;
}

/**
 * Writes a whole file atomically: temp file, fsync, exclusive publish. On any error (a full disk
 * included) the temp file is removed and the target is untouched.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteFileOptions = {}): void {
  sweepStaleTemps(dirname(path));
  const tmp = new TempFile(path);
  try {
    tmp.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    tmp.publish(options.overwrite ?? false, path);
  } catch (e) {
    tmp.discard();
    throw e;
  }
}
