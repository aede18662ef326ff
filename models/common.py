"""Shared helpers for the model scripts: the PAD-UFES-20 split (same algorithm as
src/data/split.ts, see docs/splits.md), class list, tensor-cache loading (tensors dumped by
models/dump_tensors.mjs through the library's own sharp preprocessing) and ONNX metadata.

Run as a script to (re)write models/splits/pad-ufes-20.csv:
    /usr/bin/python3 models/common.py
"""
import csv
import json
import math
import os
import subprocess

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.normpath(os.path.join(ROOT, '..', 'shared'))
PAD_DIR = os.path.join(SHARED, 'datasets', 'pad-ufes-20')
ISIC_DIR = os.path.join(SHARED, 'datasets', 'isic-uda1')
PRETRAINED_VIT = os.path.join(SHARED, 'pretrained', 'vit_tiny_patch16_224_augreg_in21k_ft_in1k.npz')
SPLIT_CSV = os.path.join(HERE, 'splits', 'pad-ufes-20.csv')
CACHE = os.path.join(HERE, '.cache')

CLASSES = ['ACK', 'BCC', 'MEL', 'NEV', 'SCC', 'SEK']
SPLIT_SEED = 20250101
FRACTIONS = (0.60, 0.15, 0.25)


# ----------------------------------------------------------------------------- split
def mulberry32(seed):
    """mulberry32 with explicit 32-bit masking; same stream as src/data/split.ts."""
    state = [seed & 0xFFFFFFFF]

    def imul(a, b):
        return (a * b) & 0xFFFFFFFF

    def rand():
        state[0] = (state[0] + 0x6D2B79F5) & 0xFFFFFFFF
        a = state[0]
        t = imul(a ^ (a >> 15), 1 | a)
        t = ((t + imul(t ^ (t >> 7), 61 | t)) & 0xFFFFFFFF) ^ t
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0

    return rand


def shuffle_in_place(items, rand):
    for i in range(len(items) - 1, 0, -1):
        j = math.floor(rand() * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items


def round_half_up(x):
    return math.floor(x + 0.5)


def assign_splits(units, seed=SPLIT_SEED, fractions=FRACTIONS):
    """units: list of (unit, stratum). Returns dict unit -> split name."""
    by_stratum = {}
    for unit, stratum in units:
        by_stratum.setdefault(stratum, set()).add(unit)
    rand = mulberry32(seed)
    out = {}
    for stratum in sorted(by_stratum):
        lst = shuffle_in_place(sorted(by_stratum[stratum]), rand)
        n_train = round_half_up(len(lst) * fractions[0])
        n_val = round_half_up(len(lst) * fractions[1])
        for i, u in enumerate(lst):
            out[u] = 'train' if i < n_train else ('val' if i < n_train + n_val else 'test')
    return out


def fitz_group(value):
    v = (value or '').strip()
    if v == '':
        return None, 'unknown'
    f = int(float(v))
    return f, ('light' if f <= 3 else 'dark')


def make_pad_split(seed=SPLIT_SEED):
    with open(os.path.join(PAD_DIR, 'metadata.csv'), newline='') as fh:
        rows = list(csv.DictReader(fh))
    groups_of = {}
    for r in rows:
        _, g = fitz_group(r['fitspatrick'])
        groups_of.setdefault(r['patient_id'], set()).add(g)
    units = []
    for pid, gs in groups_of.items():
        stratum = 'dark' if 'dark' in gs else ('light' if 'light' in gs else 'unknown')
        units.append((pid, stratum))
    assign = assign_splits(units, seed)
    out = []
    for r in rows:
        f, g = fitz_group(r['fitspatrick'])
        out.append({
            'image': r['image'], 'patient_id': r['patient_id'], 'diagnostic': r['diagnostic'],
            'fitzpatrick': '' if f is None else str(f), 'group': g, 'split': assign[r['patient_id']],
        })
    return out


def write_pad_split(path=SPLIT_CSV):
    rows = make_pad_split()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', newline='') as fh:
        w = csv.DictWriter(fh, fieldnames=['image', 'patient_id', 'diagnostic', 'fitzpatrick', 'group', 'split'],
                           lineterminator='\n')
        w.writeheader()
        w.writerows(rows)
    return rows


def read_pad_split(path=SPLIT_CSV):
    with open(path, newline='') as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- tensors
def dump_tensors(paths, preprocess, name):
    """Preprocess images with the library's sharp code (models/dump_tensors.mjs); cached.
    Returns a float32 array [N,3,crop,crop]."""
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, name + '.f32')
    side = out + '.json'
    if os.path.exists(out) and os.path.exists(side):
        meta = json.load(open(side))
        if meta['images'] == list(paths) and meta['preprocess'] == preprocess:
            return np.fromfile(out, dtype='<f4').reshape(meta['shape'])
    lst = out + '.list'
    with open(lst, 'w') as fh:
        fh.write('\n'.join(paths) + '\n')
    subprocess.run(['node', os.path.join(HERE, 'dump_tensors.mjs'), '--list', lst,
                    '--preprocess', json.dumps(preprocess), '--out', out], check=True)
    meta = json.load(open(side))
    return np.fromfile(out, dtype='<f4').reshape(meta['shape'])


# ----------------------------------------------------------------------------- onnx metadata
def set_fairprune_metadata(onnx_path, preprocess, kind, classes=CLASSES, extra=None):
    import onnx
    m = onnx.load(onnx_path)
    props = {'fairprune.preprocess': json.dumps(preprocess), 'fairprune.classes': json.dumps(classes),
             'fairprune.kind': kind}
    if extra:
        props.update(extra)
    keep = [p for p in m.metadata_props if p.key not in props]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, onnx_path)


if __name__ == '__main__':
    rows = write_pad_split()
    from collections import Counter
    print('first rand:', [mulberry32(SPLIT_SEED)() for _ in range(1)])
    print(Counter((r['split'], r['group']) for r in rows))
    print(Counter(r['split'] for r in rows))
