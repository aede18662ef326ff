/** Progress bars on stderr for the CLI's long steps (silent when stderr is not a terminal or with --json). */
import cliProgress from 'cli-progress';
import { onInterrupt } from './interrupt.js';

export interface Progress {
  /** `done` and `total` count images, in every stage. */
  update(stage: string, done: number, total: number): void;
  stop(): void;
}

/** Shows the cursor and turns line wrap back on (a bar hides the one and turns off the other). */
const RESTORE_TERMINAL = '\x1b[?25h\x1b[?7h';

export function progressBars(enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let current = '';
  let release: (() => void) | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    current = '';
    release?.();
    release = undefined;
  };
  return {
    update(stage, done, total) {
      if (stage !== current) {
        bar?.stop();
        current = stage;
        bar = new cliProgress.SingleBar(
          { format: `${stage.padEnd(12)} [{bar}] {value}/{total} images {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
        // Ctrl-C during a bar: stop it and restore the terminal before the process ends.
        release ??= onInterrupt(() => {
          bar?.stop();
          process.stderr.write(`\n${RESTORE_TERMINAL}`);
        });
      } else {
        bar?.setTotal(total);
        bar?.update(done);
      }
    },
    stop,
  };
}
