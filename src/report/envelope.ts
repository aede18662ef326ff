/** The versioned report object every command prints with --json and writes to report.json. */
import { readFileSync } from 'node:fs';
import { REPORT_FORMAT, REPORT_SCHEMA_VERSION, type Evaluation, type FairpruneReport, type PruneReport, type ReportCommand } from './types.js';

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

/** Wraps runs (prune, search, demo), an evaluation (eval) or a sweep summary (sweep) in the versioned report. */
export function makeReport(
  command: ReportCommand,
  content: { runs?: PruneReport[]; evaluation?: Evaluation; sweep?: FairpruneReport['sweep']; files?: FairpruneReport['files'] },
): FairpruneReport {
  return {
    format: REPORT_FORMAT,
    schemaVersion: REPORT_SCHEMA_VERSION,
    command,
    tool: { name: '@fairprune/core', version: packageVersion() },
    createdAt: new Date().toISOString(),
    runs: content.runs ?? [],
    ...(content.evaluation ? { evaluation: content.evaluation } : {}),
    ...(content.sweep ? { sweep: content.sweep } : {}),
    ...(content.files ? { files: content.files } : {}),
  };
}

/** Runs of a report given either as the versioned report or, as before version 1, as bare runs. */
export function asReport(input: FairpruneReport | PruneReport | PruneReport[]): FairpruneReport {
  if (Array.isArray(input)) return makeReport(input.length > 1 ? 'demo' : input[0]?.search ? 'search' : 'prune', { runs: input });
  if ('format' in input) return input;
  return makeReport(input.search ? 'search' : 'prune', { runs: [input] });
}
