/** Files the commands write: models' default names, reports, logs. */
import { existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../onnx/files.js';
import { basename, dirname, join, resolve } from 'node:path';
import { renderHtml } from '../report/html.js';
import type { PruneReport } from '../report/types.js';
import { CliError } from './errors.js';

export function writeAtomic(file: string, text: string, force: boolean): void {
  if (existsSync(file) && !force) throw new CliError(`${file} already exists; pass --force to replace it`);
  mkdirSync(dirname(resolve(file)), { recursive: true });
  // Temp file removed on error (a full disk) and on SIGINT/SIGTERM; exclusive publish without --force.
  writeFileAtomic(file, text, { overwrite: force });
}

export function writeReports(dir: string, reports: PruneReport[], force: boolean): { json: string; html: string } {
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  writeAtomic(json, JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2), force);
  writeAtomic(html, renderHtml(reports, 'fairprune: SkewPrune report'), force);
  return { json, html };
}

/** `<model>.<suffix>.onnx` beside the model. */
export function defaultOutput(model: string, suffix = 'pruned'): string {
  return join(dirname(model), `${basename(model, '.onnx')}.${suffix}.onnx`);
}
