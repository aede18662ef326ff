import { ResumeMismatchError } from '../core/options.js';

/** A user-facing error: printed as one line on stderr, exit code 1. */
export class CliError extends Error {}

/** A resumed log that does not match the run: named by its file, with how to start afresh. */
export function resumeError(e: unknown, log: string): unknown {
  if (!(e instanceof ResumeMismatchError)) return e;
  const msg = e.message.replace(/^resume: /, '').replace(/; start a new log$/, '');
  return new CliError(`--log ${log}: ${msg}; to start afresh delete the log or pass another --log`);
}
