"""Reference SkewPrune calibration statistics (SPEC section 1) computed independently in PyTorch +
scipy, for the library's tests to compare against.

  /usr/bin/python3 models/reference_skewness.py --model vgg   # -> models/reference/skewness_vgg11_pad.json
  /usr/bin/python3 models/reference_skewness.py --model vit   # -> models/reference/skewness_vit_tiny_pad.json

Images: the first --n (default 16) test-split images of PAD-UFES-20 in models/splits/pad-ufes-20.csv
order, preprocessed by the library's own sharp code (models/dump_tensors.mjs) with the recipe in
the model's metadata. The torch model is rebuilt from the ONNX initializers (so the statistics are
of the committed ONNX, not of a checkpoint) and checked against onnxruntime-node's logits.
Taps (forward hooks):
  vgg: every MaxPool output [B,C,H,W] (all are fed by Relu): skew over H*W per image and channel.
  vit: the patch-embedding Conv output [B,D,h,w]: skew over h*w per image and channel; and every
       attention Softmax output [B,H,T,T]: skew over T*T per image and head.
Skewness: scipy.stats.skew (population g1 = m3/m2^1.5, bias=True) in float64; a constant map
(m2 <= 1e-12*mean^2 + 1e-30) has skewness 0. Median over images (even count: mean of the two
middle values, numpy.median). keep = indices with median > 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy
import scipy.stats
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CLASSES, PAD_DIR, ROOT, dump_tensors, read_pad_split  # noqa: E402


def skew_rows(a):
    """a: [..., n] -> population skewness over the last axis, float64, constant rule applied."""
    a = np.asarray(a, dtype=np.float64)
    g = scipy.stats.skew(a, axis=-1, bias=True)
    mean = a.mean(axis=-1)
    m2 = ((a - mean[..., None]) ** 2).mean(axis=-1)
    const = m2 <= 1e-12 * mean ** 2 + 1e-30
    g = np.where(const, 0.0, g)
    return g


def load_onnx_weights(model, onnx_path, name_map=None):
    """Copy ONNX initializers into the torch model by name (torch.onnx.export keeps parameter
    names for initializers it does not fold)."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    sd = model.state_dict()
    new = {}
    for k, v in sd.items():
        src = (name_map or {}).get(k, k)
        if src not in inits:
            raise KeyError(f'{k} not among the ONNX initializers')
        arr = inits[src]
        if tuple(arr.shape) != tuple(v.shape):
            raise ValueError(f'{k}: ONNX {arr.shape} vs torch {tuple(v.shape)}')
        new[k] = torch.from_numpy(arr.copy())
    model.load_state_dict(new)
    return m


def ort_logits(onnx_path, x):
    with tempfile.TemporaryDirectory() as d:
        xi, yo = os.path.join(d, 'x.f32'), os.path.join(d, 'y.f32')
        x.astype('<f4').tofile(xi)
        subprocess.run(['node', os.path.join(ROOT, 'models', 'run_onnx.mjs'), onnx_path, xi, yo, '--shape',
                        ','.join(map(str, x.shape))], check=True, stderr=subprocess.DEVNULL)
        return np.fromfile(yo, dtype='<f4').reshape(x.shape[0], -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, choices=['vgg', 'vit'])
    ap.add_argument('--onnx', default=None)
    ap.add_argument('--out', default=None)
    ap.add_argument('--n', type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(2)
    import onnx
    onnx_path = a.onnx or os.path.join(ROOT, 'models', 'vgg11_pad.onnx' if a.model == 'vgg' else 'vit_tiny_pad.onnx')
    out = a.out or os.path.join(ROOT, 'models', 'reference',
                                'skewness_vgg11_pad.json' if a.model == 'vgg' else 'skewness_vit_tiny_pad.json')
    om = onnx.load(onnx_path)
    meta = {p.key: p.value for p in om.metadata_props}
    pre = json.loads(meta['fairprune.preprocess'])

    rows = read_pad_split()
    test = [r for r in rows if r['split'] == 'test'][:a.n]
    images = [r['image'] for r in test]
    x = dump_tensors([os.path.join(PAD_DIR, i) for i in images], pre, f'ref_{a.model}_{a.n}')

    if a.model == 'vgg':
        from export_torchvision import VGG
        model = VGG(width=0.25, batch_norm=False, num_classes=6, input_size=128, head='flatten', hidden=256)
    else:
        from vit_timm import VisionTransformerTimm
        model = VisionTransformerTimm(img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3,
                                      num_classes=6)
    try:
        load_onnx_weights(model, onnx_path)
        weights_from = 'ONNX initializers (by parameter name)'
    except (KeyError, ValueError) as e:
        # timm-style ViT: the exporter folds the transposed Linear weights into unnamed MatMul
        # constants, so use the training checkpoint instead (checked against onnxruntime below).
        print(f'ONNX initializers do not map by name ({e}); using models/.cache/{a.model}_best.pt')
        sd = torch.load(os.path.join(ROOT, 'models', '.cache', f'{a.model}_best.pt'))
        model.load_state_dict(sd)
        weights_from = f'training checkpoint models/.cache/{a.model}_best.pt'
    model.eval()

    # ONNX nodes in graph (topological) order
    nodes = list(om.graph.node)
    pools = [n for n in nodes if n.op_type == 'MaxPool']
    softmaxes = [n for n in nodes if n.op_type == 'Softmax']
    convs = [n for n in nodes if n.op_type == 'Conv']
    producer = {o: n for n in nodes for o in n.output}

    def module_of(node):  # '/features/features.2/MaxPool' -> 'features.2'
        parts = node.name.strip('/').split('/')
        return parts[-2] if len(parts) >= 2 else None

    taps = []  # (torch module, onnx node, kind, order)
    if a.model == 'vgg':
        mods = dict(model.named_modules())
        for i, n in enumerate(pools):
            src = producer.get(n.input[0])
            assert src is not None and src.op_type == 'Relu', f'MaxPool {n.name} is not fed by Relu'
            name = module_of(n)
            assert isinstance(mods[name], nn.MaxPool2d), name
            taps.append((name, n, 'maxpool', i))
    else:
        mods = dict(model.named_modules())
        assert module_of(convs[0]) == 'proj' and convs[0].name.startswith('/patch_embed/proj'), convs[0].name
        taps.append(('patch_embed.proj', convs[0], 'patch', 0))
        for i, n in enumerate(softmaxes):
            # '/blocks/blocks.3/attn/softmax/Softmax' -> 'blocks.3.attn.softmax'
            parts = n.name.strip('/').split('/')
            name = f'{parts[1]}.attn.softmax'
            assert isinstance(mods[name], nn.Softmax), name
            taps.append((name, n, 'heads', i))

    captured = {}
    hooks = []
    for name, node, kind, order in taps:
        def hook(mod, inp, outp, name=name):
            captured[name] = outp.detach().double().numpy()
        hooks.append(dict(model.named_modules())[name].register_forward_hook(hook))
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    for h in hooks:
        h.remove()
    ort = ort_logits(onnx_path, x)
    ort_diff = float(np.abs(ort - logits).max())
    print(f'torch ({weights_from}) vs onnxruntime-node: max |logit diff| {ort_diff:.2e}')
    assert ort_diff < 1e-3

    out_taps = []
    for name, node, kind, order in taps:
        t = captured[name]  # [B, C, ...]
        B, C = t.shape[0], t.shape[1]
        per = skew_rows(t.reshape(B, C, -1))  # [B, C]
        med = np.median(per, axis=0)
        entry = {
            'name': node.output[0], 'onnx_node': node.name, 'op': node.op_type, 'order': order,
            'torch_module': name, 'kind': kind,
            'shape': list(t.shape[1:]),
            'axis': 'channel' if kind != 'heads' else 'head',
            'medians': [float(v) for v in med],
            'keep': [int(i) for i in np.nonzero(med > 0)[0]],
            'per_image': [[float(v) for v in row] for row in per.T],  # [C][N]
        }
        if kind == 'heads':
            entry['block'] = int(name.split('.')[1])
        out_taps.append(entry)
        print(f'{node.output[0]:50s} {kind:7s} {str(list(t.shape[1:])):18s} keep {len(entry["keep"])}/{C}')
    res = {
        'model': os.path.relpath(onnx_path, ROOT),
        'dataset_dir': '../shared/datasets/pad-ufes-20',
        'images': images,
        'image_selection': f'first {a.n} test-split images of models/splits/pad-ufes-20.csv, in CSV order',
        'preprocess': pre,
        'tensors': 'library sharp preprocessing via models/dump_tensors.mjs',
        'statistic': 'population skewness g1 = m3/m2^1.5 (scipy.stats.skew, bias=True, float64) per image and '
                     'channel/head over the flattened map (H*W or T*T); constant map (m2 <= 1e-12*mean^2 + 1e-30) '
                     '-> 0; median over images (even count: mean of the two middle values)',
        'threshold': 0,
        'keep_rule': 'median > threshold',
        'per_image_layout': '[channel or head][image], images in the order of `images`',
        'versions': {'torch': torch.__version__, 'scipy': scipy.__version__, 'numpy': np.__version__},
        'weights_from': weights_from,
        'onnxruntime_check_max_abs_logit_diff': ort_diff,
        'logits': [[float(v) for v in r] for r in logits],
        'classes': CLASSES,
        'taps': out_taps,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as fh:
        json.dump(res, fh)
        fh.write('\n')
    print(f'wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB)')


if __name__ == '__main__':
    main()
