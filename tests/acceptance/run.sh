#!/usr/bin/env bash
# Acceptance test of the package as a user installs it (run by .ci/run after `npm test`):
# npm pack, install the tarball into a fresh project outside the repository exactly as the README
# says, then use it only through that install: the bin via node_modules/.bin, an ESM and a CommonJS
# script, a strict tsc of a consumer TypeScript file, and checks of the tarball's contents.
# Every step must exit 0 and print something. Needs the npm registry (the dependencies) and a few
# images from ../shared/datasets (or $FAIRPRUNE_DATA).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${FAIRPRUNE_DATA:-$repo/../shared/datasets}"
work="$(mktemp -d "${TMPDIR:-/tmp}/fairprune-acceptance-XXXXXX")"
trap 'rm -rf "$work"' EXIT
case "$work" in "$repo"/*) echo "acceptance: $work is inside the repository" >&2; exit 1;; esac

step() { # step <name> <command...>: runs it, shows its output, fails when it fails or prints nothing
  local name="$1"; shift
  echo "== $name: $*"
  local out
  if ! out="$("$@" 2>&1)"; then printf '%s\n' "$out"; echo "acceptance: FAILED: $name" >&2; exit 1; fi
  if [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ]; then echo "acceptance: FAILED: $name printed nothing" >&2; exit 1; fi
  printf '%s\n' "$out" | head -n "${LINES_SHOWN:-12}"
}

cd "$repo"
step "pack" npm pack --silent --pack-destination "$work"
tarball="$(ls "$work"/fairprune-core-*.tgz)"

mkdir "$work/app" && cd "$work/app"
npm init -y >/dev/null
# Exactly the README's consumer install ("## Install").
step "install (README)" env ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund "$tarball"
pkg="$work/app/node_modules/@fairprune/core"
bin="$work/app/node_modules/.bin/fairprune"

# What the tarball holds: LICENSE, source maps that resolve, docs that cite only shipped files.
step "package contents" node "$repo/tests/acceptance/check-package.mjs" "$pkg"

# A handful of calibration images, linked from the shared datasets (never copied into the repo).
mkdir images
for f in $(ls "$data/pad-ufes-20/images" | head -n 8); do ln -s "$data/pad-ufes-20/images/$f" "images/$f"; done

step "fairprune --version" "$bin" --version
step "fairprune --help" "$bin" --help
step "fairprune inspect vgg11" "$bin" inspect "$pkg/models/vgg11_pad.onnx"
step "fairprune inspect vit" "$bin" inspect "$pkg/models/vit_tiny_pad.onnx"
step "fairprune prune vgg11" "$bin" prune "$pkg/models/vgg11_pad.onnx" -c images -o vgg.pruned.onnx --report rep -b 8
step "fairprune prune vit (default pattern, no --scope)" "$bin" prune "$pkg/models/vit_tiny_pad.onnx" -c images -o vit.pruned.onnx -b 8
step "fairprune inspect pruned" "$bin" inspect vgg.pruned.onnx
step "fairprune eval original vs pruned (PAD-UFES-20 test split)" "$bin" eval "$pkg/models/vgg11_pad.onnx" vgg.pruned.onnx -d pad-ufes-20:test --data-root "$data" --resamples 100
test -s rep/report.json && test -s rep/report.html

cat > esm.mjs <<'JS'
import { skewPrune, loadModel, graphCost } from '@fairprune/core';
import { fileURLToPath } from 'node:url';
const file = fileURLToPath(import.meta.resolve('@fairprune/core/models/vgg11_pad.onnx'));
const cost = await graphCost(loadModel(file));
console.log(`ESM: skewPrune is a ${typeof skewPrune}; ${file}: ${(cost.parameters / 1e6).toFixed(3)} M parameters`);
if (typeof skewPrune !== 'function') process.exit(1);
JS
cat > cjs.cjs <<'JS'
const { skewPrune, loadModel } = require('@fairprune/core');
const file = require.resolve('@fairprune/core/models/vgg11_pad.onnx');
const model = loadModel(file);
console.log(`CommonJS: skewPrune is a ${typeof skewPrune}; ${file}: ${model.proto.graph.node.length} nodes`);
if (typeof skewPrune !== 'function') process.exit(1);
JS
step "ESM import" node esm.mjs
step "CommonJS require" node cjs.cjs

# The README's and docs/usage.md's API, type-checked strictly against the installed declarations.
cat > consumer.ts <<'TS'
import { skewPrune, saveModel, renderHtml, loadModel, graphCost, type PruneReport } from '@fairprune/core';
import { writeFileSync } from 'node:fs';

const { model, report, keepSets } = await skewPrune('vgg11.onnx', {
  calibration: './images',
  pattern: 'filters',
  threshold: 0,
  minKeep: 1,
  executionProviders: ['cuda', 'cpu'],
  latency: true,
  onProgress: ({ stage, done, total }) => console.error(stage, done, total),
});
saveModel(model, 'vgg11.pruned.onnx');
const r: PruneReport = report;
writeFileSync('report.html', renderHtml([r]));
const cost = await graphCost(loadModel('vgg11.pruned.onnx'));
console.log(keepSets.length, cost.parameters);
TS
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "noEmit": true, "skipLibCheck": false, "types": ["node"], "typeRoots": ["__TYPEROOTS__"]
  },
  "files": ["consumer.ts"]
}
JSON
sed -i "s#__TYPEROOTS__#$repo/node_modules/@types#" tsconfig.json
npm pkg set type=module >/dev/null
tsc_out() { "$repo/node_modules/.bin/tsc" -p tsconfig.json && echo "tsc --strict --noEmit consumer.ts: no errors"; }
step "strict tsc of a consumer" tsc_out
echo "acceptance: all steps passed"
