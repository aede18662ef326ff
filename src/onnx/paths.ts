/**
 * Where an external-data location points, decided without ever looking outside the model's folder.
 *
 * A location is resolved component by component from the folder's real path: each component is
 * lstat'ed (it is inside the folder, so that reveals nothing about the host), and a symlink is
 * replaced by its target read with readlink, whose text is checked for containment before anything
 * it names is touched. So a location or a symlink that leads outside is refused with the same
 * message whether or not the outside file exists: no existence or size oracle for host files.
 */
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Why a location cannot be used; the caller wraps it in its own typed error. */
export class LocationError extends Error {}

const MAX_SYMLINK_HOPS = 40;

/** Path components. ONNX locations are POSIX paths: a backslash separates only on Windows (found by tests/fuzz.test.ts: 'a\\b' was saved as one file name and read back as two components). */
function parts(p: string): string[] {
  return p.split(sep === '\\' ? /[\\/]+/ : /\/+/).filter((s) => s !== '' && s !== '.');
}

/**
 * The real path of `location` inside `baseDir`, which must name a regular file. Throws
 * LocationError (never an fs error) for a location that is empty, absolute, climbs out, leads out
 * through a symlink, names a folder or something else that is not a regular file, or is missing.
 */
export function resolveInside(baseDir: string, location: string): string {
  if (location.includes('\0')) throw new LocationError(`location '${location}' contains a NUL byte`);
  if (isAbsolute(location)) throw new LocationError(`location '${location}' is absolute; it must be relative to the model's folder`);
  let root: string;
  try {
    root = realpathSync(baseDir);
  } catch (e) {
    throw new LocationError(`the model's folder ${baseDir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const queue = parts(location);
  if (queue.length === 0) throw new LocationError(`location '${location}' names the model's folder, not a file`);
  const outside = () => new LocationError(`location '${location}' points outside the model's folder`);
  const stack: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (p === '..') {
      if (stack.length === 0) throw outside();
      stack.pop();
      continue;
    }
    const here = join(root, ...stack, p);
    let st;
    try {
      st = lstatSync(here);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new LocationError(code === 'ENOENT' ? `file '${location}' not found beside the model (${here} is missing)` : `location '${location}': ${here}: ${code ?? (e as Error).message}`);
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new LocationError(`location '${location}': too many symlinks (a loop?) at ${here}`);
      const target = readlinkSync(here);
      if (isAbsolute(target)) {
        // An absolute target counts only when it is textually inside the folder's real path.
        const rel = relative(root, target);
        if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw outside();
        stack.length = 0;
        queue.unshift(...parts(rel));
      } else {
        queue.unshift(...parts(target));
      }
      continue;
    }
    if (queue.length > 0 && !st.isDirectory()) throw new LocationError(`location '${location}': ${here} is not a folder`);
    if (queue.length === 0) {
      if (st.isDirectory()) throw new LocationError(`location '${location}' names a folder (${here}), not a file`);
      if (!st.isFile()) throw new LocationError(`location '${location}': ${here} is not a regular file`);
    }
    stack.push(p);
  }
  if (stack.length === 0) throw new LocationError(`location '${location}' names the model's folder, not a file`);
  const file = join(root, ...stack);
  // A symlink to '.' or to a folder can end the walk on a folder.
  if (!lstatSync(file).isFile()) throw new LocationError(`location '${location}' names a folder or special file (${file}), not a regular file`);
  return file;
}

/**
 * Which file a path names, to compare an output with the files a model reads: the real path of
 * an existing file, else the file's name in its folder's real path (a target not written yet).
 */
export function realPathOf(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const dir = dirname(abs);
  return join(existsSync(dir) ? realpathSync(dir) : dir, basename(abs));
}
