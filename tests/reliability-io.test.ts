/**
 * Issue 15, items 1, 3, 4, 8, 9 and the external-location part of 12: the ONNX layer's file
 * handling under hostile or careless input, faults, signals and concurrent writers.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, readdirSync, symlinkSync, mkdirSync, utimesSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  loadModel,
  saveModel,
  ModelProtoSchema,
  StringStringEntryProtoSchema,
  ExternalDataError,
  OnnxFormatError,
  OutputExistsError,
  OutputPathError,
  readFloat32,
  writeFileAtomic,
  sweepStaleTemps,
} from '../src/onnx/index.js';
import { ioFaults } from '../src/onnx/files.js';
import { tinyCnn } from './helpers/graph-builder.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const fresh = (tag: string) => mkdtempSync(join(tmpdir(), `fairprune-rel-${tag}-`));
// Any temp-file naming this library used (old: '.tmp-<pid>', now '.fairprune-tmp-<pid>-<n>').
const temps = (dir: string) => readdirSync(dir).filter((n) => /tmp-\d+/.test(n));

afterEach(() => {
  delete ioFaults.beforeWrite;
});

/** A model folder whose weights live in `<name>.data`. */
function externalModel(dir: string, name = 'm.onnx'): string {
  const f = join(dir, name);
  saveModel(tinyCnn(), f, { externalDataThreshold: 64 });
  return f;
}

/** Points tensor c1.w of a saved model at another location and saves it inline-header only. */
function relocate(modelFile: string, location: string): string {
  const m = loadModel(modelFile);
  const t = m.proto.graph!.initializer.find((x) => x.name === 'c1.w')!;
  t.externalData = t.externalData.map((e) => (e.key === 'location' ? create(StringStringEntryProtoSchema, { key: 'location', value: location }) : e));
  // toBinary keeps the external references as they are (serializeModel would inline them).
  const bytes = toBinary(ModelProtoSchema, m.proto);
  const out = join(dirname(modelFile), `reloc-${Math.random().toString(36).slice(2)}.onnx`);
  writeFileSync(out, bytes);
  return out;
}

describe('item 3: external-data locations stay in the model folder, no oracle for outside files', () => {
  it('refuses ../, absolute, symlinked files and folders leading out, with one message whether the target exists or not', () => {
    const dir = fresh('loc');
    const f = externalModel(dir);
    symlinkSync('/etc/services', join(dir, 'link.bin'));
    symlinkSync('/definitely/not/there', join(dir, 'dangling.bin'));
    symlinkSync('/', join(dir, 'up'));
    symlinkSync('..', join(dir, 'parent'));
    const cases: [string, RegExp][] = [
      ['../../etc/shadow', /location '\.\.\/\.\.\/etc\/shadow' points outside the model's folder/],
      ['../../no/such/file', /location '\.\.\/\.\.\/no\/such\/file' points outside the model's folder/],
      ['/etc/passwd', /location '\/etc\/passwd' is absolute/],
      ['link.bin', /location 'link\.bin' points outside the model's folder/],
      ['dangling.bin', /location 'dangling\.bin' points outside the model's folder/],
      ['up/etc/services', /location 'up\/etc\/services' points outside the model's folder/],
      ['parent/x', /location 'parent\/x' points outside the model's folder/],
    ];
    for (const [location, message] of cases) {
      const g = relocate(f, location);
      expect(() => loadModel(g), location).toThrow(ExternalDataError);
      let msg = '';
      try {
        loadModel(g);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, location).toMatch(message);
      expect(msg).toMatch(/tensor 'c1\.w'/);
      // No size, no existence: the message never names a byte count or "not found" for outside paths.
      expect(msg).not.toMatch(/bytes|not found|ENOENT|EACCES/);
      // Reading lazily (checkExternalData off) refuses the same way.
      const lazy = loadModel(g, { checkExternalData: false });
      expect(() => readFloat32(lazy.proto.graph!.initializer.find((x) => x.name === 'c1.w')!, lazy.baseDir, g)).toThrow(message);
    }
  });

  it('follows a symlink that stays inside, and names "." and folders clearly (item 12)', () => {
    const dir = fresh('inside');
    const f = externalModel(dir);
    mkdirSync(join(dir, 'sub'));
    symlinkSync('../m.onnx.data', join(dir, 'sub', 'alias.data'));
    const ok = loadModel(relocate(f, 'sub/alias.data'));
    expect(readFloat32(ok.proto.graph!.initializer.find((x) => x.name === 'c1.w')!, ok.baseDir).length).toBe(6 * 27);
    expect(() => loadModel(relocate(f, '.'))).toThrow(/location '\.' names the model's folder, not a file/);
    expect(() => loadModel(relocate(f, 'sub'))).toThrow(/location 'sub' names a folder/);
    symlinkSync('loop2', join(dir, 'loop1'));
    symlinkSync('loop1', join(dir, 'loop2'));
    expect(() => loadModel(relocate(f, 'loop1'))).toThrow(/too many symlinks \(a loop\?\)/);
  });
});

describe('item 1: saving never destroys the input or an existing file', () => {
  it('refuses to write the data file the loaded model reads, even with overwrite', () => {
    const dir = fresh('own');
    // The input reads its weights from out.onnx.data: saving to out.onnx with external data would replace it.
    const input = join(dir, 'in.onnx');
    saveModel(tinyCnn(), input, { externalDataThreshold: 64, externalDataFile: 'out.onnx.data' });
    const before = readFileSync(join(dir, 'out.onnx.data'));
    const m = loadModel(input);
    for (const overwrite of [false, true]) {
      expect(() => saveModel(m, join(dir, 'out.onnx'), { externalDataThreshold: 64, overwrite })).toThrow(OutputPathError);
      expect(() => saveModel(m, join(dir, 'out.onnx'), { externalDataThreshold: 64, overwrite })).toThrow(/out\.onnx\.data: is an external-data file the model being saved reads its weights from/);
    }
    expect(readFileSync(join(dir, 'out.onnx.data')).equals(before)).toBe(true);
    expect(existsSync(join(dir, 'out.onnx'))).toBe(false);
    expect(temps(dir)).toEqual([]);
  });

  it('refuses an existing <out>.data without overwrite, and bad externalDataFile names', () => {
    const dir = fresh('data');
    writeFileSync(join(dir, 'o.onnx.data'), 'precious');
    const m = tinyCnn();
    expect(() => saveModel(m, join(dir, 'o.onnx'), { externalDataThreshold: 64 })).toThrow(OutputExistsError);
    expect(() => saveModel(m, join(dir, 'o.onnx'), { externalDataThreshold: 64 })).toThrow(/o\.onnx\.data: already exists/);
    expect(readFileSync(join(dir, 'o.onnx.data'), 'utf8')).toBe('precious');
    expect(existsSync(join(dir, 'o.onnx'))).toBe(false);
    const bad: [string, RegExp][] = [
      ['../x', /externalDataFile '\.\.\/x' is outside the model's folder/],
      ['/tmp/elsewhere.data', /externalDataFile '\/tmp\/elsewhere\.data' is outside the model's folder/],
      ['p.onnx', /externalDataFile 'p\.onnx' is the model file itself/],
      ['.', /externalDataFile '\.' names the model's folder/],
      ['nodir/x.data', /is in a folder that does not exist/],
    ];
    for (const [name, message] of bad) {
      expect(() => saveModel(m, join(dir, 'p.onnx'), { externalDataThreshold: 64, externalDataFile: name }), name).toThrow(OutputPathError);
      expect(() => saveModel(m, join(dir, 'p.onnx'), { externalDataThreshold: 64, externalDataFile: name }), name).toThrow(message);
    }
    symlinkSync(tmpdir(), join(dir, 'out-link'));
    expect(() => saveModel(m, join(dir, 'p.onnx'), { externalDataThreshold: 64, externalDataFile: 'out-link/x.data' })).toThrow(/leads outside the model's folder through a symlink/);
    expect(readdirSync(dir).sort()).toEqual(['o.onnx.data', 'out-link']);
    // An absolute path inside the folder is fine and stored relative.
    saveModel(m, join(dir, 'p.onnx'), { externalDataThreshold: 64, externalDataFile: join(dir, 'p.bin') });
    const back = loadModel(join(dir, 'p.onnx'));
    expect(back.proto.graph!.initializer.find((t) => t.name === 'c1.w')!.externalData.find((e) => e.key === 'location')!.value).toBe('p.bin');
  });
});

describe('item 9: exclusive publish', () => {
  it('two writers to one target without overwrite: exactly one wins', async () => {
    const dir = fresh('race');
    const out = join(dir, 'same.onnx');
    // Run the writers in separate processes so they truly race on the file system.
    const script = `import { saveModel } from './src/onnx/io.ts'; import { tinyCnn } from './tests/helpers/graph-builder.ts';
      const m = tinyCnn(Number(process.argv[1]));
      try { saveModel(m, process.argv[2], { externalDataThreshold: Number(process.argv[3]) }); console.log('won'); }
      catch (e) { console.log(e.name); }`;
    const run = (seed: number, threshold: number, target: string) =>
      new Promise<string>((res) => {
        const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, String(seed), target, String(threshold)], { cwd: root });
        let s = '';
        c.stdout.on('data', (d) => (s += d));
        c.on('close', () => res(s.trim()));
      });
    for (const threshold of [1e9, 64]) {
      const target = join(dir, `t${threshold}.onnx`);
      const results = await Promise.all([1, 2, 3, 4].map((seed) => run(seed, threshold, target)));
      expect(results.filter((r) => r === 'won').length, results.join(',')).toBe(1);
      expect(results.filter((r) => r === 'OutputExistsError').length).toBe(3);
      // The winner's model and data file belong together.
      const m = loadModel(target);
      expect(m.proto.graph!.initializer.length).toBeGreaterThan(0);
    }
    void out;
    expect(temps(dir)).toEqual([]);
  }, 60_000);

  it('the link itself refuses a target created after the existence check', () => {
    const dir = fresh('late');
    const out = join(dir, 'late.onnx');
    ioFaults.beforeWrite = () => {
      if (!existsSync(out)) writeFileSync(out, 'someone else');
    };
    expect(() => saveModel(tinyCnn(), out)).toThrow(OutputExistsError);
    expect(readFileSync(out, 'utf8')).toBe('someone else');
    expect(temps(dir)).toEqual([]);
  });
});

describe('item 4: loadModel reads regular files only, size checked first', () => {
  it('refuses /dev/zero, a folder, a FIFO and a 3 GB sparse file without reading them', () => {
    expect(() => loadModel('/dev/zero')).toThrow(OnnxFormatError);
    expect(() => loadModel('/dev/zero')).toThrow(/\/dev\/zero: not a readable ONNX model: is a device, not a regular file/);
    const dir = fresh('size');
    expect(() => loadModel(dir)).toThrow(/is a folder/);
    const fifo = join(dir, 'pipe.onnx');
    execFileSync('mkfifo', [fifo]);
    expect(() => loadModel(fifo)).toThrow(/is a pipe, not a regular file/);
    const sparse = join(dir, 'sparse.onnx');
    execFileSync('truncate', ['-s', '3G', sparse]);
    expect(() => loadModel(sparse)).toThrow(/has 3221225472 bytes, over the 2147483647-byte limit of one ONNX protobuf message/);
    expect(() => loadModel(join(dir, 'x.onnx'), {})).toThrow(/file not found/);
    const small = join(dir, 'small.onnx');
    saveModel(tinyCnn(), small);
    expect(() => loadModel(small, { maxBytes: 100 })).toThrow(/over the 100-byte limit/);
    rmSync(sparse);
  });
});

describe('item 8: temp files removed on error, on signals, and swept when stale', () => {
  it('an injected ENOSPC mid-save leaves nothing behind (model and data file)', () => {
    const dir = fresh('enospc');
    let writes = 0;
    ioFaults.beforeWrite = () => {
      if (++writes === 3) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    expect(() => saveModel(tinyCnn(), join(dir, 'full.onnx'), { externalDataThreshold: 64 })).toThrow(/ENOSPC/);
    expect(readdirSync(dir)).toEqual([]);
    writes = 0;
    expect(() => writeFileAtomic(join(dir, 'report.json'), '{}')).not.toThrow();
    ioFaults.beforeWrite = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    expect(() => writeFileAtomic(join(dir, 'report.json'), '{"a":1}', { overwrite: true })).toThrow(/ENOSPC/);
    expect(readFileSync(join(dir, 'report.json'), 'utf8')).toBe('{}');
    expect(temps(dir)).toEqual([]);
  });

  it('a real full file system (128 KiB tmpfs) leaves nothing behind', (ctx) => {
    const mnt = fresh('tmpfs');
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', mnt]);
    if (r.status !== 0) {
      ctx.skip('mounting a tmpfs needs root; the injected ENOSPC test above covers the same path');
      return;
    }
    try {
      // tinyCnn is ~10 KB; a 400 KB payload cannot fit.
      expect(() => writeFileAtomic(join(mnt, 'big.json'), 'x'.repeat(400_000))).toThrow(/ENOSPC/);
      expect(readdirSync(mnt)).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('SIGTERM or SIGINT during a save: no temp file is left and the process still ends by the signal', async () => {
    const dir = fresh('signal');
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      for (const threshold of ['none', '64']) {
        const out = join(dir, `${signal}-${threshold}.onnx`);
        const script = `import { saveModel } from './src/onnx/io.ts'; import { ioFaults } from './src/onnx/files.ts'; import { tinyCnn } from './tests/helpers/graph-builder.ts';
          let sent = false;
          ioFaults.beforeWrite = () => { if (!sent) { sent = true; process.kill(process.pid, '${signal}'); } };
          saveModel(tinyCnn(), process.argv[1], ${threshold === 'none' ? '{}' : `{ externalDataThreshold: ${threshold} }`});
          setTimeout(() => console.log('survived'), 2000);`;
        const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, out], { cwd: root, encoding: 'utf8' });
        expect(r.signal, r.stderr).toBe(signal);
        expect(r.stdout).not.toMatch(/survived/);
        expect(temps(dir)).toEqual([]);
      }
    }
  }, 60_000);

  it('sweeps temp files of dead processes (and only those) on the next save', () => {
    const dir = fresh('sweep');
    // Find a pid that is not running.
    let dead = 4_000_000;
    for (;;) {
      try {
        process.kill(dead, 0);
        dead--;
      } catch {
        break;
      }
    }
    const stale = join(dir, `old.onnx.fairprune-tmp-${dead}-1`);
    const live = join(dir, `busy.onnx.fairprune-tmp-${process.ppid}-1`);
    const foreign = join(dir, `notes.tmp-${dead}`);
    for (const f of [stale, live, foreign]) {
      writeFileSync(f, 'x');
      utimesSync(f, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    }
    saveModel(tinyCnn(), join(dir, 'new.onnx'));
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(foreign)).toBe(true);
    expect(sweepStaleTemps(dir)).toEqual([]);
  });
});
