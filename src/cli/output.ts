/** Files the commands write: models' default names, reports, logs. */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../onnx/files.js';
import { OutputExistsError } from '../onnx/errors.js';
import { basename, dirname, join, resolve } from 'node:path';
import { renderHtml } from '../report/html.js';
import type { FairpruneReport } from '../report/types.js';
import { CliError } from './errors.js';

export function writeAtomic(file: string, text: string, force: boolean): void {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  // Temp file removed on error (a full disk) and on SIGINT/SIGTERM. Without --force the publish is
  // exclusive, so it is also the existence check (no window between a check and the write).
  try {
    writeFileAtomic(file, text, { overwrite: force });
  } catch (e) {
    if (e instanceof OutputExistsError) throw new CliError(`${file} already exists; pass --force to replace it`);
    throw e;
  }
}

/** A JSON file the user named (a search space, a resumable log); a bad one names the file. */
export function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`${what} ${file}: ${(e as Error).message}`);
  }
}

/** Paths of report.json and report.html in a folder. */
export function reportFiles(dir: string): { json: string; html: string } {
  return { json: join(dir, 'report.json'), html: join(dir, 'report.html') };
}

/**
 * Writes report.json (the same versioned object `--json` prints, docs/report-schema.md) and
 * report.html rendered from it, to the paths named in report.files.
 */
export function writeReport(report: FairpruneReport, force: boolean, title = 'fairprune: SkewPrune report'): void {
  const { json, html } = report.files ?? {};
  if (!json || !html) throw new Error('writeReport: report.files names no json/html paths');
  writeAtomic(json, JSON.stringify(report, null, 2), force);
  writeAtomic(html, renderHtml(report, title), force);
}

/** `<model>.<suffix>.onnx` beside the model. */
export function defaultOutput(model: string, suffix = 'pruned'): string {
  return join(dirname(model), `${basename(model, '.onnx')}.${suffix}.onnx`);
}
