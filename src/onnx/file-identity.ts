/**
 * The files a model reads its weights from later (openModel's own file, external-data files), as
 * they were when the model was opened or loaded. A weight read afterwards comes from the file by
 * offset; if the file was rewritten meanwhile (an export script re-run over the same path, in place
 * or by rename), those offsets point into other bytes. Every later read compares the file with what
 * was recorded and refuses a changed one instead of reading wrong weights.
 */
import type { Stats } from 'node:fs';
import { ExternalDataError } from './errors.js';

interface Identity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/** Real path -> identity when last opened or loaded (the latest open wins). */
const recorded = new Map<string, Identity>();

/** Records `path` (a real path) as it is now: `st` is its stat. */
export function recordFile(path: string, st: Stats): void {
  recorded.set(path, { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
}

/**
 * Throws ExternalDataError when `path` (`st`: its stat now) is not the file recorded for it: another
 * file renamed over it, or the same file rewritten (size or modification time changed). Files
 * never recorded pass.
 */
export function checkUnchanged(path: string, st: Stats, modelFile: string, tensor: string): void {
  const was = recorded.get(path);
  if (!was) return;
  const what =
    st.dev !== was.dev || st.ino !== was.ino
      ? 'another file has replaced it'
      : st.size !== was.size
        ? `its size changed from ${was.size} to ${st.size} bytes`
        : st.mtimeMs !== was.mtimeMs
          ? 'it was modified'
          : undefined;
  if (what) throw new ExternalDataError(modelFile, tensor, `${path} changed since the model was opened (${what}); its weights are no longer the ones it describes: open the model again`);
}
