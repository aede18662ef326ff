import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Dataset,
  DatasetError,
  PAD_UFES_20_CLASSES,
  assignDatasetSplits,
  fitzpatrickGroup,
  parseCsv,
  parseFitzpatrick,
  readCsv,
  readCsvDataset,
  readIsic,
  readPadUfes20,
  resolveDataRoot,
  validateGroupMapping,
  type DatasetItem,
} from '../src/data/index.js';

const ROOT = resolveDataRoot();
const HAVE_PAD = existsSync(join(ROOT, 'pad-ufes-20', 'metadata.csv'));
const HAVE_ISIC = existsSync(join(ROOT, 'isic-uda1', 'metadata.csv'));
const SPLIT_CSV = join(import.meta.dirname, '..', 'models', 'splits', 'pad-ufes-20.csv');
if (!HAVE_PAD) console.warn(`SKIPPING PAD-UFES-20 tests: no dataset at ${ROOT}/pad-ufes-20 (set FAIRPRUNE_DATA)`);

const tmp = mkdtempSync(join(tmpdir(), 'fairprune-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('CSV', () => {
  it('reads quoted fields, doubled quotes, embedded commas and newlines, CRLF', () => {
    const t = parseCsv('a,b,c\r\n1,"x, y","he said ""hi"""\r\n2,"multi\nline",\r\n');
    expect(t.header).toEqual(['a', 'b', 'c']);
    expect(t.records).toEqual([
      { a: '1', b: 'x, y', c: 'he said "hi"' },
      { a: '2', b: 'multi\nline', c: '' },
    ]);
  });
  it('names the file and line of a short row', () => {
    expect(() => parseCsv('a,b\n1\n', 'f.csv')).toThrow(/f.csv: line 2 has 1 fields/);
  });
});

describe('groups', () => {
  it('maps Fitzpatrick 1-3 to light, 4-6 to dark, missing to unknown; parses 3.0 and roman numerals', () => {
    expect([1, 2, 3, 4, 5, 6, undefined].map((f) => fitzpatrickGroup(f))).toEqual(['light', 'light', 'light', 'dark', 'dark', 'dark', 'unknown']);
    expect(['3.0', ' 4 ', 'IV', '', 'x', '7'].map(parseFitzpatrick)).toEqual([3, 4, 4, undefined, undefined, undefined]);
  });
  it('allows K groups and refuses a type in two groups', () => {
    const three = validateGroupMapping({ I_II: [1, 2], III_IV: [3, 4], V_VI: [5, 6] });
    expect(fitzpatrickGroup(4, three)).toBe('III_IV');
    expect(() => validateGroupMapping({ a: [1, 2], b: [2, 3] })).toThrow(/type 2 is in both 'a' and 'b'/);
  });
});

describe('splits', () => {
  it('keeps every patient in one split and is reproducible for a seed', () => {
    const items: DatasetItem[] = [];
    for (let p = 0; p < 60; p++) for (let k = 0; k <= p % 3; k++) items.push({ image: `/x/${p}_${k}.jpg`, label: 0, group: p % 7 === 0 ? 'dark' : 'light', patient: `P${p}` });
    const a = assignDatasetSplits(items, 5);
    const b = assignDatasetSplits(items, 5);
    expect(a.map((i) => i.split)).toEqual(b.map((i) => i.split));
    const splitOf = new Map<string, Set<string>>();
    for (const it of a) (splitOf.get(it.patient!) ?? splitOf.set(it.patient!, new Set()).get(it.patient!)!).add(it.split!);
    expect([...splitOf.values()].every((s) => s.size === 1)).toBe(true);
    // Dark patients are spread over the splits (stratified).
    const darkSplits = new Set(a.filter((i) => i.group === 'dark').map((i) => i.split));
    expect(darkSplits.size).toBe(3);
  });
});

describe.skipIf(!HAVE_PAD)('PAD-UFES-20 reader (needs the shared dataset)', () => {
  const pad = HAVE_PAD ? readPadUfes20() : undefined!;

  it('reads 686 images, six classes in order, 401 light / 31 dark / 254 unknown', () => {
    expect(pad.size).toBe(686);
    expect(pad.classes).toEqual([...PAD_UFES_20_CLASSES]);
    expect(pad.groupCounts()).toEqual({ light: 401, dark: 31, unknown: 254 });
    expect(pad.items.every((it) => existsSync(it.image))).toBe(true);
  });

  it('puts no patient in two splits', () => {
    const seen = new Map<string, string>();
    for (const it of pad.items) {
      const prev = seen.get(it.patient!);
      if (prev) expect(it.split, it.patient).toBe(prev);
      seen.set(it.patient!, it.split!);
    }
    const sizes = ['train', 'val', 'test'].map((s) => pad.split(s as 'train').size);
    expect(sizes.reduce((a, b) => a + b)).toBe(686);
    expect(Math.min(...sizes)).toBeGreaterThan(50);
  });

  it.skipIf(!existsSync(SPLIT_CSV))('reproduces models/splits/pad-ufes-20.csv row for row', () => {
    const t = readCsv(SPLIT_CSV);
    expect(t.records.length).toBe(pad.size);
    t.records.forEach((r, i) => {
      const it = pad.items[i];
      expect({
        image: it.image.slice(it.image.length - r.image.length),
        patient_id: it.patient,
        diagnostic: pad.classes[it.label],
        fitzpatrick: it.fitzpatrick === undefined ? '' : String(it.fitzpatrick),
        group: it.group,
        split: it.split,
      }).toEqual(r);
    });
  });

  it('gives different splits for another seed, and honours FAIRPRUNE_DATA', () => {
    const other = readPadUfes20({ seed: 7 });
    expect(other.items.some((it, i) => it.split !== pad.items[i].split)).toBe(true);
    const saved = process.env.FAIRPRUNE_DATA;
    process.env.FAIRPRUNE_DATA = ROOT;
    try {
      expect(readPadUfes20().size).toBe(686);
      process.env.FAIRPRUNE_DATA = join(tmp, 'nowhere');
      expect(() => readPadUfes20()).toThrow(/pad-ufes-20' not found at .*nowhere.*FAIRPRUNE_DATA/);
    } finally {
      if (saved === undefined) delete process.env.FAIRPRUNE_DATA;
      else process.env.FAIRPRUNE_DATA = saved;
    }
  });
});

describe('missing dataset', () => {
  it('names the path and how to set it', () => {
    expect(() => readPadUfes20({ root: join(tmp, 'absent') })).toThrow(DatasetError);
    expect(() => readPadUfes20({ root: join(tmp, 'absent') })).toThrow(/absent.*pad-ufes-20.*FAIRPRUNE_DATA/);
  });
});

describe.skipIf(!HAVE_ISIC)('ISIC reader on isic-uda1 (needs the shared dataset)', () => {
  it('reads the diagnosis column, skips the two unlabelled rows, groups unknown', () => {
    const d = readIsic();
    expect(d.skipped).toBe(2);
    expect(d.size).toBe(555);
    expect(d.classes).toEqual(['melanoma', 'nevus']);
    expect(d.groupCounts()).toEqual({ unknown: 555 });
    expect(new Set(d.items.map((i) => i.split))).toEqual(new Set(['train', 'val', 'test']));
  });
});

describe('ISIC one-hot and generic CSV readers', () => {
  const dir = join(tmp, 'isic2019');
  mkdirSync(join(dir, 'images'), { recursive: true });
  for (const id of ['ISIC_1', 'ISIC_2', 'ISIC_3']) writeFileSync(join(dir, 'images', `${id}.jpg`), '');
  writeFileSync(
    join(dir, 'gt.csv'),
    'image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK,fst\nISIC_1,1.0,0.0,0,0,0,0,0,0,0,5\nISIC_2,0,1,0,0,0,0,0,0,0,\nISIC_3,0,0,1,0,0,0,0,0,0,2\n',
  );

  it('reads one-hot ISIC 2019 columns with an optional Fitzpatrick column', () => {
    const d = readIsic({ dir, csv: 'gt.csv', fitzpatrickColumn: 'fst' });
    expect(d.classes).toEqual(['MEL', 'NV', 'BCC', 'AK', 'BKL', 'DF', 'VASC', 'SCC', 'UNK']);
    expect(d.items.map((i) => [i.label, i.group])).toEqual([
      [0, 'dark'],
      [1, 'unknown'],
      [2, 'light'],
    ]);
    expect(d.items[0].image).toBe(join(dir, 'images', 'ISIC_1.jpg'));
  });

  it('reads a generic CSV with caller class order, a group column, a patient column and given splits', () => {
    const csv = join(tmp, 'list.csv');
    writeFileSync(csv, 'path,dx,tone,pid,part\na.jpg,benign,dark,p1,train\nsub/b.jpg,malignant,,p2,test\n/abs/c.jpg,benign,light,p1,train\n');
    const d = readCsvDataset({ csv, imageColumn: 'path', labelColumn: 'dx', groupColumn: 'tone', patientColumn: 'pid', splitColumn: 'part', classes: ['malignant', 'benign'] });
    expect(d.items).toEqual([
      { image: join(tmp, 'a.jpg'), label: 1, group: 'dark', patient: 'p1', split: 'train' },
      { image: join(tmp, 'sub/b.jpg'), label: 0, group: 'unknown', patient: 'p2', split: 'test' },
      { image: '/abs/c.jpg', label: 1, group: 'light', patient: 'p1', split: 'train' },
    ]);
    expect(() => readCsvDataset({ csv, imageColumn: 'path', labelColumn: 'dx', classes: ['malignant'] })).toThrow(/row 2 has class 'benign'/);
    expect(() => readCsvDataset({ csv, labelColumn: 'dx' })).toThrow(/missing column\(s\) 'image'/);
  });

  it('checks the class count against a model output width', () => {
    const d = new Dataset(['a', 'b', 'c'], [{ image: '/x.jpg', label: 2, group: 'light' }], 'toy');
    expect(() => d.checkOutputWidth(5, 'm.onnx')).toThrow(/toy has 3 classes \(a, b, c\) but m.onnx outputs 5/);
    expect(() => new Dataset(['a'], [{ image: '/x.jpg', label: 1, group: 'light' }])).toThrow(/label 1, outside the 1 classes/);
  });
});
