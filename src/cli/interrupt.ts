/**
 * Work to undo when the user interrupts (SIGINT, SIGTERM): restore the terminal, remove what a
 * command had started to write. The listener re-raises the signal after running the callbacks, so
 * the process still ends by it (the ONNX layer's temp-file listener, if installed, then does the
 * same: it re-raises once it is the last listener).
 */
const callbacks = new Set<() => void>();
let hooked = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const f of [...callbacks]) {
    try {
      f();
    } catch {
      // Best effort: the process is ending.
    }
  }
  callbacks.clear();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  hooked = false;
  process.kill(process.pid, signal);
}

/** Runs `f` if the process is interrupted before the returned function is called. */
export function onInterrupt(f: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  callbacks.add(f);
  return () => void callbacks.delete(f);
}
