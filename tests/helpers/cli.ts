/** The built `fairprune` bin, run as a user runs it, for the CLI tests. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** dist/cli/main.js: `npm test` builds it (tsc) before vitest runs. */
export const cliBin = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `fairprune ...args` in `cwd` with colours off. */
export function runCli(cwd: string, args: string[]): CliResult {
  const r = spawnSync(process.execPath, [cliBin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
