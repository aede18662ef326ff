/** Progress bars on stderr for the CLI's long steps (silent when stderr is not a terminal or with --json). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(stage: string, done: number, total: number): void;
  stop(): void;
}

export function progressBars(enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let current = '';
  return {
    update(stage, done, total) {
      if (stage !== current) {
        bar?.stop();
        current = stage;
        bar = new cliProgress.SingleBar(
          { format: `${stage.padEnd(12)} [{bar}] {value}/{total} {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      } else {
        bar?.setTotal(total);
        bar?.update(done);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
      current = '';
    },
  };
}
