/**
 * Checks an installed (or unpacked) @fairprune/core: LICENSE is there, every source map's sources
 * are shipped, and every Markdown file cites only shipped files. Prints what it checked; exits 1
 * naming each fault. Usage: node check-package.mjs <package folder>
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(process.argv[2] ?? '.');
const walk = (d) => readdirSync(d).flatMap((f) => (f === 'node_modules' ? [] : statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
const files = walk(root);
const faults = [];

if (!/^MIT License/.test(existsSync(join(root, 'LICENSE')) ? readFileSync(join(root, 'LICENSE'), 'utf8') : '')) faults.push('LICENSE: missing or not the MIT license');

const maps = files.filter((f) => f.endsWith('.map'));
for (const map of maps) {
  const m = JSON.parse(readFileSync(map, 'utf8'));
  for (const s of m.sources) {
    const src = resolve(dirname(map), m.sourceRoot ?? '', s);
    if (!existsSync(src)) faults.push(`${relative(root, map)}: source ${s} is not in the package`);
  }
}

// Paths a document may name that are deliberately not in the package: the shared datasets and
// pretrained weights beside a clone; models/full/ and bench/out/ (gitignored outputs of the models/
// tooling and the benchmarks).
const outside = [/^(\.\.\/)+shared(\/|$)/, /^models\/full\//, /^bench\/out\//];
const docs = files.filter((f) => f.endsWith('.md'));
let cited = 0;
for (const doc of docs) {
  const text = readFileSync(doc, 'utf8');
  const refs = [];
  for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1])) refs.push(m[1]);
  for (const m of text.matchAll(/`((?:\.\.?\/|src\/|dist\/|docs\/|models\/|fixtures\/|tests\/|bench\/)[^`\s]*)`/g)) refs.push(m[1]);
  for (const ref of refs) {
    cited++;
    if (outside.some((re) => re.test(ref))) continue;
    const glob = ref.includes('*');
    const exists = (p) => (glob ? existsSync(dirname(p)) : existsSync(p));
    if (!exists(resolve(dirname(doc), ref)) && !exists(resolve(root, ref))) faults.push(`${relative(root, doc)}: cites ${ref}, which is not in the package`);
  }
}

// Every `import { ... } from '@fairprune/core[/subpath]'` in the shipped docs names a subpath the
// package exports and values that module has (type-only names are left to the consumer tsc step).
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
let imported = 0;
for (const doc of docs) {
  const text = readFileSync(doc, 'utf8');
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(@fairprune\/core(\/[^']*)?)'/g)) {
    const sub = `.${m[3] ?? ''}`;
    const entry = pkg.exports?.[sub];
    const file = typeof entry === 'string' ? entry : (entry?.import ?? entry?.default);
    if (!file) {
      faults.push(`${relative(root, doc)}: imports from '${m[2]}', a subpath the package does not export`);
      continue;
    }
    const mod = await import(pathToFileURL(join(root, file)).href);
    for (const raw of m[1].split(',')) {
      const name = raw.trim().replace(/\s+as\s+\w+$/, '');
      if (!name || name.startsWith('type ')) continue;
      imported++;
      if (!(name in mod)) faults.push(`${relative(root, doc)}: imports '${name}' from '${m[2]}', which does not export it`);
    }
  }
}

if (faults.length) {
  console.error(faults.join('\n'));
  console.error(`${faults.length} fault(s) in ${root}`);
  process.exit(1);
}
console.log(`LICENSE (MIT); ${maps.length} source maps, every source shipped; ${docs.length} Markdown files, ${cited} citations, all shipped; ${imported} names imported in them, all exported`);
