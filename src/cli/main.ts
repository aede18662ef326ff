#!/usr/bin/env node
/**
 * The `fairprune` bin. It always runs: npm starts it through a symlink (node_modules/.bin), so
 * comparing process.argv[1] with this file's path fails there. Importable pieces live in
 * ./program.ts (the commands' wiring) and ./commands/ (one module per command).
 */
import { main } from './program.js';

void main(process.argv).then((code) => {
  process.exitCode = code;
});
