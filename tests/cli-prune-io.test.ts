/**
 * `fairprune prune` input and output handling, through the built bin in a child process: output
 * targets checked before any work, nothing left behind on failure, --dry-run, the text output's
 * per-layer table and notes, calibration sources (recursive folders, every sharp format, list
 * files, label-free CSVs, --skip-unreadable, few images), and the terminal after Ctrl-C.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { mulberry32 } from '../src/data/split.js';
import { cliBin, runCli } from './helpers/cli.js';
import { Outputs } from '../src/cli/targets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = cliBin;
const fixture = join(root, 'fixtures', 'vgg11_w8.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'fairprune-cli-io-'));

const run = (...args: string[]) => runCli(tmp, args);

/** Small generated images in the given formats, cycling through them. */
async function makeImages(dir: string, n: number, formats: ('jpeg' | 'png' | 'webp' | 'tiff')[] = ['jpeg', 'png']): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const rand = mulberry32(7);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const w = 40;
    const px = Buffer.alloc(w * w * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j % 3 === 0 ? 120 : 60) + 100 * rand();
    const f = formats[i % formats.length];
    const file = join(dir, `img${String(i).padStart(2, '0')}.${f === 'jpeg' ? 'jpg' : f === 'tiff' ? 'tif' : f}`);
    await sharp(px, { raw: { width: w, height: w, channels: 3 } }).toFormat(f).toFile(file);
    files.push(file);
  }
  return files;
}

const images = join(tmp, 'images');
/** A folder with one file that is not an image: calibration fails on it unless --skip-unreadable. */
const withBad = join(tmp, 'with-bad');
beforeAll(async () => {
  expect(existsSync(bin)).toBe(true); // npm test builds dist/ before running vitest
  await makeImages(images, 6);
  await makeImages(withBad, 4);
  writeFileSync(join(withBad, 'broken.jpg'), 'not a JPEG');
});

describe('output targets are checked before any work', () => {
  it('refuses an existing report file, an existing <out>.data and an out path under a file before calibrating', () => {
    // Each run would fail on broken.jpg if it calibrated; the output error comes first.
    mkdirSync(join(tmp, 'rep-exists'));
    writeFileSync(join(tmp, 'rep-exists', 'report.html'), 'old');
    const a = run('prune', fixture, '-c', withBad, '-o', 'a.onnx', '--report', 'rep-exists');
    expect(a.code).toBe(1);
    expect(a.stderr).toContain('fairprune: error: rep-exists/report.html already exists; pass --force to replace it');
    expect(readFileSync(join(tmp, 'rep-exists', 'report.html'), 'utf8')).toBe('old');
    writeFileSync(join(tmp, 'b.onnx.data'), 'old');
    const b = run('prune', fixture, '-c', withBad, '-o', 'b.onnx', '--external-data');
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('b.onnx.data already exists');
    writeFileSync(join(tmp, 'plainfile'), '');
    const c = run('prune', fixture, '-c', withBad, '-o', 'plainfile/c.onnx');
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/fairprune: error: pruned model plainfile\/c\.onnx: .*plainfile is not a folder/);
    for (const r of [a, b, c]) expect(r.stderr).not.toContain('broken.jpg');
    expect(existsSync(join(tmp, 'a.onnx')) || existsSync(join(tmp, 'b.onnx'))).toBe(false);
  });

  it('refuses, --force or not, external data or a report that would land on the input model or its data', () => {
    // The input is named like the output's data file: --external-data would write over it.
    const input = join(tmp, 'x.onnx.data');
    writeFileSync(input, readFileSync(fixture));
    for (const force of [[], ['--force']]) {
      const r = run('prune', input, '-c', withBad, '-o', 'x.onnx', '--external-data', ...force);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toBe('fairprune: error: external data x.onnx.data would replace the input model; choose another --out');
      expect(readFileSync(input).equals(readFileSync(fixture)), 'the input is untouched').toBe(true);
      expect(existsSync(join(tmp, 'x.onnx'))).toBe(false);
    }
    // An input with its own external data (in.onnx + in.onnx.data), replaced with --force and
    // --external-data: the new data file would be the one the input's weights are read from.
    expect(run('prune', fixture, '-c', images, '-o', 'in.onnx', '--external-data').code).toBe(0);
    const data = readFileSync(join(tmp, 'in.onnx.data'));
    const r = run('prune', 'in.onnx', '-c', images, '-o', 'in.onnx', '--external-data', '--force');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('external data in.onnx.data would replace an external-data file the input model reads');
    expect(readFileSync(join(tmp, 'in.onnx.data')).equals(data)).toBe(true);
  });

  it('creates missing output and report folders, and removes them again when the run fails', () => {
    const ok = run('prune', fixture, '-c', images, '-o', 'new/models/x.onnx', '--report', 'new/report');
    expect(ok.stderr).not.toContain('error');
    expect(ok.code).toBe(0);
    expect(readdirSync(join(tmp, 'new', 'report')).sort()).toEqual(['report.html', 'report.json']);
    expect(existsSync(join(tmp, 'new', 'models', 'x.onnx'))).toBe(true);
    const bad = run('prune', fixture, '-c', withBad, '-o', 'gone/models/y.onnx', '--report', 'gone/report');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('broken.jpg');
    expect(bad.stderr).not.toMatch(/\.tmp-\d+/);
    expect(existsSync(join(tmp, 'gone'))).toBe(false);
  });
});

describe('Outputs.write on failure', () => {
  it('removes the files the write created or replaced, and keeps one that was there and untouched', () => {
    const dir = join(tmp, 'outputs-unit');
    mkdirSync(dir);
    const kept = join(dir, 'kept.data');
    const replaced = join(dir, 'replaced.data');
    const created = join(dir, 'created.data');
    writeFileSync(kept, 'user');
    writeFileSync(replaced, 'old');
    const outputs = new Outputs([{ path: join(dir, 'm.onnx'), what: 'pruned model' }], [], true);
    expect(() =>
      outputs.write({ path: join(dir, 'm.onnx'), what: 'pruned model' }, () => {
        writeFileSync(created, 'new');
        writeFileSync(`${replaced}.tmp`, 'new');
        renameSync(`${replaced}.tmp`, replaced);
        throw new Error('disk full');
      }, [kept, replaced, created]),
    ).toThrow('cannot write pruned model');
    expect(readFileSync(kept, 'utf8')).toBe('user');
    expect(existsSync(replaced)).toBe(false);
    expect(existsSync(created)).toBe(false);
  });
});

describe('eval and search check their outputs before any work too', () => {
  it('refuses an existing report file before evaluating, and an existing chosen model before searching', () => {
    mkdirSync(join(tmp, 'evrep'));
    writeFileSync(join(tmp, 'evrep', 'report.json'), 'old');
    // The dataset names broken.jpg: evaluating would fail on it, so the report error shows the check came first.
    writeFileSync(join(tmp, 'ev.csv'), ['image,label', ...readdirSync(withBad).sort().map((n, i) => `with-bad/${n},${i % 2 ? 'A' : 'B'}`)].join('\n'));
    const f = run('eval', fixture, '-d', 'csv:ev.csv', '--report', 'evrep');
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('evrep/report.json already exists; pass --force to replace it');
    expect(f.stderr).not.toContain('broken.jpg');
    writeFileSync(join(tmp, 'chosen.onnx'), 'old');
    const s = run('search', fixture, '-d', 'csv:ev.csv', '-o', 'chosen.onnx');
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('chosen.onnx already exists; pass --force to replace it');
    expect(readFileSync(join(tmp, 'chosen.onnx'), 'utf8')).toBe('old');
  });
});

describe('--dry-run and the text output', () => {
  it('prints the plan (per layer kept/total, warnings, notes) and writes nothing', () => {
    const r = run('prune', fixture, '-c', images, '-o', 'dry.onnx', '--report', 'dryrep', '-t', '5', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Layer +Unit +Kept\/total +Removed/);
    expect(r.stdout).toMatch(/\/features\/features\.20\/MaxPool_output_0 +filters +\d+\/64/);
    expect(r.stdout).toMatch(/warning: removed \d+ of 184 units/);
    expect(r.stdout).toContain('note: minKeep rule fired');
    expect(r.stdout).toContain('dry run: nothing written');
    expect(existsSync(join(tmp, 'dry.onnx'))).toBe(false);
    expect(existsSync(join(tmp, 'dryrep'))).toBe(false);
  });
});

describe('calibration sources', () => {
  it('reads folders recursively, in every format sharp decodes, and warns under 32 images', async () => {
    const tree = join(tmp, 'tree');
    await makeImages(join(tree, 'a'), 3, ['webp', 'tiff', 'png']);
    await makeImages(join(tree, 'b', 'c'), 2, ['jpeg']);
    const r = run('prune', fixture, '-c', tree, '--dry-run', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).runs[0].method.calibrationImages).toBe(5);
    expect(r.stderr).toContain('fairprune: warning: only 5 calibration images');
  });

  it('skips unreadable images with --skip-unreadable and counts them in the report', () => {
    const r = run('prune', fixture, '-c', withBad, '--skip-unreadable', '--dry-run', '--json');
    expect(r.code).toBe(0);
    const run0 = JSON.parse(r.stdout).runs[0];
    expect(run0.method.calibrationImages).toBe(4);
    expect(run0.notes.some((n: string) => n.startsWith('skipped 1 unreadable calibration image') && n.includes('broken.jpg'))).toBe(true);
  });

  it('takes a list file and a CSV without labels', () => {
    const names = readdirSync(images).sort();
    writeFileSync(join(tmp, 'list.txt'), ['# calibration images', ...names.slice(0, 4).map((n) => `images/${n}`), ''].join('\n'));
    const l = run('prune', fixture, '-c', 'list.txt', '--dry-run', '--json');
    expect(l.code).toBe(0);
    expect(JSON.parse(l.stdout).runs[0].method.calibrationImages).toBe(4);
    writeFileSync(join(tmp, 'cal.csv'), ['image,fitzpatrick', ...names.map((n, i) => `images/${n},${i < 3 ? 2 : 5}`)].join('\n'));
    const c = run('prune', fixture, '-c', 'csv:cal.csv', '--dry-run', '--json');
    expect(c.stderr).not.toContain('error');
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).runs[0].method.calibrationImages).toBe(6);
  });
});

const haveScript = spawnSync('script', ['--version']).status === 0;

describe.skipIf(!haveScript)('on a terminal (util-linux script gives the CLI a pty)', () => {
  /** Runs the bin on a pty; `onOutput` sees the output so far and may signal the bin. */
  function onPty(args: string[], onOutput?: (out: string, pid: number) => void): Promise<{ code: number | null; out: string }> {
    const cmd = `exec ${process.execPath} ${bin} ${args.join(' ')}`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: tmp, env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    // `exec` makes the bin script's only child.
    const pid = () => Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]);
    child.stdout.on('data', (d) => {
      out += d;
      onOutput?.(out, pid());
    });
    return new Promise((res) => child.on('exit', (code) => res({ code, out })));
  }

  it('shows progress in images for calibration and latency', async () => {
    const r = await onPty(['prune', fixture, '-c', images, '-o', 'tty.onnx', '--latency', '-b', '2']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/calibrate +\[[^\]]*\] 6\/6 images/);
    expect(r.out).toMatch(/latency +\[[^\]]*\] \d+\/\d+ images/);
  });

  it('restores the cursor and line wrap on Ctrl-C and removes what it had started', async () => {
    let sent = false;
    const r = await onPty(['prune', join(root, 'models', 'vit_tiny_pad.onnx'), '-c', images, '-o', 'int/x.onnx', '--report', 'intrep', '-b', '1'], (out, pid) => {
      if (!sent && /calibrate .*images/.test(out)) {
        sent = true;
        process.kill(pid, 'SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    const after = r.out.slice(r.out.lastIndexOf('\x1b[?25l'));
    expect(after).toContain('\x1b[?25h'); // cursor shown
    expect(after).toContain('\x1b[?7h'); // line wrap on
    expect(existsSync(join(tmp, 'int'))).toBe(false);
    expect(existsSync(join(tmp, 'intrep'))).toBe(false);
  });
});
