"""The export matrix for surgery tests: small models exported by torch.onnx (1.13) under the
settings real files come with (opset, static or dynamic batch, initializers listed as graph
inputs, constant folding on/off, BatchNorm folded or not, weights held in Constant nodes), written
to fixtures/matrix/ with a manifest.json that describes every file (and every combination the
exporter refused). CI reads only the committed files; this script is how they were made.

  nice -n 10 /usr/bin/python3 models/export_matrix.py [--only NAME,...] [--list]

The rows are a covering subset, not the full product: every setting appears on every family where
it changes the graph the surgery sees, and each row varies few settings at once so a failure names
its cause. See fixtures/README.md ("Export matrix") for the reasoning per row.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_torchvision import VGG, build_vit_b16, fixture_init, warm_bn  # noqa: E402

OUT_DIR = os.path.join(HERE, '..', 'fixtures', 'matrix')
NUM_CLASSES = 6
INPUT = 32


def vgg(bn, init='fixture'):
    # torchvision vgg11 layout at width 1/8 and a 32-wide classifier (~600 KB, mostly conv weights).
    m = VGG(width=0.125, batch_norm=bn, num_classes=NUM_CLASSES, input_size=INPUT, head='flatten', hidden=32)
    if init == 'fixture':
        fixture_init(m)
    if bn:
        warm_bn(m, INPUT)
    return m


def vit_tv():
    return build_vit_b16(image_size=INPUT, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
                         num_classes=NUM_CLASSES)


def vit_timm():
    from vit_timm import VisionTransformerTimm
    return VisionTransformerTimm(img_size=INPUT, patch_size=8, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0,
                                 num_classes=NUM_CLASSES)


def vit_hf():
    from vit_hf import ViTHF
    return ViTHF(image_size=INPUT, patch_size=8, hidden=32, layers=2, heads=4, mlp=64, num_classes=NUM_CLASSES)


def swin():
    # torchvision swin_t's class at small width: patch 4 -> 8x8 tokens, window 4 (shifted by 2 in
    # odd blocks), two stages (2 and 4 heads of width 8) joined by a PatchMerging.
    from torchvision.models.swin_transformer import SwinTransformer
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=NUM_CLASSES)


# Attention blocks in graph order, as the torch model defines them: (heads, width). The tests take
# the oracle's head layout from here, not from the library's own analysis.
ATTENTION = {
    'vit_tv': [(4, 32)] * 2,
    'vit_timm': [(3, 48)] * 2,
    'vit_hf': [(4, 32)] * 2,
    'swin_t': [(2, 16)] * 2 + [(4, 32)] * 2,
}

FAMILIES = {
    'vgg11': ('cnn', lambda: vgg(False)),
    'vgg11_bn': ('cnn', lambda: vgg(True)),
    # torchvision's own init: zero biases, which torch.onnx deduplicates into Identity aliases.
    'vgg11_zero_bias': ('cnn', lambda: vgg(False, init='default')),
    'vit_tv': ('vit', vit_tv),
    'vit_timm': ('vit', vit_timm),
    'vit_hf': ('vit', vit_hf),
    'swin_t': ('swin', swin),
}

# name, family, opset, batch (0 = dynamic), keep_initializers_as_inputs, do_constant_folding,
# bn ('preserve' keeps BatchNormalization; 'fold' lets the eval export fold it), weights
# ('initializer' | 'constant': every initializer turned into a Constant node afterwards), why.
R = [
    # --- CNN: the settings that change how Conv/Gemm weights and the Flatten reach the surgery.
    ('vgg11_op7_b1', 'vgg11', 7, 1, True, True, None, 'initializer', 'IR 3: initializers must be graph inputs; static batch 1'),
    ('vgg11_op9_dyn_kiai', 'vgg11', 9, 0, True, True, None, 'initializer', 'keep_initializers_as_inputs at IR 4+, dynamic batch'),
    ('vgg11_op11_b2', 'vgg11', 11, 2, False, True, None, 'initializer', 'static batch 2'),
    ('vgg11_op13_nofold', 'vgg11', 13, 0, False, False, None, 'initializer', 'do_constant_folding=False'),
    ('vgg11_op17_b3_const', 'vgg11', 17, 3, False, True, None, 'constant', 'weights as Constant nodes, static batch 3'),
    ('vgg11_zb_op14_dyn', 'vgg11_zero_bias', 14, 0, False, True, None, 'initializer', 'zero biases shared through Identity'),
    ('vgg11_bn_op13_keep', 'vgg11_bn', 13, 0, False, True, 'preserve', 'initializer', 'BatchNormalization kept'),
    ('vgg11_bn_op14_fold', 'vgg11_bn', 14, 0, False, True, 'fold', 'initializer', 'BN folded into the convs by the exporter'),
    ('vgg11_bn_op9_keep_kiai', 'vgg11_bn', 9, 0, True, True, 'preserve', 'initializer', 'BN kept and BN params listed as inputs'),
    # --- torchvision ViT (nn.MultiheadAttention, fused in_proj, [T, B*H, dh] folded heads).
    ('vit_tv_op11_dyn', 'vit_tv', 11, 0, False, True, None, 'initializer', 'oldest opset with the MHA export'),
    ('vit_tv_op13_b1', 'vit_tv', 13, 1, False, True, None, 'initializer', 'static batch 1'),
    ('vit_tv_op14_b3', 'vit_tv', 14, 3, False, True, None, 'initializer', 'static batch 3: [T, B*H, dh] = [5, 12, 8]'),
    ('vit_tv_op17_b2_kiai', 'vit_tv', 17, 2, True, True, None, 'initializer', 'static batch 2, initializers as inputs'),
    ('vit_tv_op14_nofold', 'vit_tv', 14, 0, False, False, None, 'initializer', 'Linear weights through Transpose'),
    ('vit_tv_op14_const', 'vit_tv', 14, 0, False, True, None, 'constant', 'weights as Constant nodes'),
    ('vit_tv_op9_dyn', 'vit_tv', 9, 0, True, True, None, 'initializer', 'opset 9 (if the exporter manages)'),
    ('vit_tv_op7_b1', 'vit_tv', 7, 1, True, True, None, 'initializer', 'opset 7 (if the exporter manages)'),
    # --- timm (fused qkv reshaped to [B, N, 3, H, dh]).
    ('vit_timm_op13_dyn', 'vit_timm', 13, 0, False, True, None, 'initializer', 'dynamic batch'),
    ('vit_timm_op17_b2', 'vit_timm', 17, 2, False, True, None, 'initializer', 'static batch 2'),
    ('vit_timm_op14_nofold', 'vit_timm', 14, 0, False, False, None, 'initializer', 'constant folding off'),
    ('vit_timm_op11_b3_kiai', 'vit_timm', 11, 3, True, True, None, 'initializer', 'static batch 3, inits as inputs'),
    ('vit_timm_op17_const', 'vit_timm', 17, 0, False, True, None, 'constant', 'weights as Constant nodes'),
    # --- Hugging Face (separate q/k/v).
    ('vit_hf_op11_dyn', 'vit_hf', 11, 0, False, True, None, 'initializer', 'dynamic batch'),
    ('vit_hf_op14_b3', 'vit_hf', 14, 3, False, True, None, 'initializer', 'static batch 3'),
    ('vit_hf_op17_nofold_kiai', 'vit_hf', 17, 0, True, False, None, 'initializer', 'folding off, inits as inputs'),
    ('vit_hf_op13_const_b2', 'vit_hf', 13, 2, False, True, None, 'constant', 'Constant nodes, static batch 2'),
    # --- Swin (windowed attention, relative position bias, shifted windows, PatchMerging).
    ('swin_t_op14_dyn', 'swin_t', 14, 0, False, True, None, 'initializer', 'torchvision swin_t class, dynamic batch'),
    ('swin_t_op17_b2', 'swin_t', 17, 2, False, True, None, 'initializer', 'static batch 2, LayerNormalization'),
    ('swin_t_op13_b1', 'swin_t', 13, 1, False, True, None, 'initializer', 'static batch 1'),
]


def to_constant_nodes(m):
    """Every initializer becomes a Constant node (as Paddle2ONNX and others write weights)."""
    from onnx import helper
    g = m.graph
    inits = list(g.initializer)
    names = {t.name for t in inits}
    nodes = [helper.make_node('Constant', [], [t.name], name=f'const_{i}', value=t) for i, t in enumerate(inits)]
    del g.initializer[:]
    keep_inputs = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(keep_inputs)
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    return m


def run_ort(path, x):
    import numpy as np
    with tempfile.TemporaryDirectory() as d:
        xi, yo = os.path.join(d, 'x.f32'), os.path.join(d, 'y.f32')
        x.numpy().astype('<f4').tofile(xi)
        subprocess.run(['node', os.path.join(HERE, 'run_onnx.mjs'), path, xi, yo, '--shape', ','.join(map(str, x.shape))],
                       check=True, stderr=subprocess.DEVNULL)
        return np.fromfile(yo, dtype='<f4')


def export_row(row):
    import onnx
    name, family, opset, batch, kiai, fold, bn, weights, why = row
    kind, build = FAMILIES[family]
    torch.manual_seed(0)
    model = build()
    if family not in ('vgg11', 'vgg11_bn', 'vgg11_zero_bias'):
        fixture_init(model)
    model.eval()
    out = os.path.join(OUT_DIR, f'{name}.onnx')
    x = torch.randn(batch or 2, 3, INPUT, INPUT)
    kw = {}
    if bn == 'preserve':
        kw['training'] = torch.onnx.TrainingMode.PRESERVE
    if batch == 0:
        kw['dynamic_axes'] = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
    entry = {'file': f'{name}.onnx', 'family': family, 'kind': kind, 'opset': opset, 'batch': batch or None,
             'keepInitializersAsInputs': kiai, 'constantFolding': fold, 'batchNorm': bn, 'weights': weights,
             'input': [batch or 'batch', 3, INPUT, INPUT], 'why': why,
             'attention': [{'heads': h, 'width': w} for h, w in ATTENTION.get(family, [])]}
    try:
        # Grad enabled: torch 1.13's MHA fast path has no ONNX symbolic (see export_torchvision.py).
        torch.onnx.export(model, x, out, input_names=['input'], output_names=['logits'], opset_version=opset,
                          do_constant_folding=fold, keep_initializers_as_inputs=kiai, **kw)
    except Exception as e:  # the exporter's own refusal is a fact of the matrix, recorded as such
        if os.path.exists(out):
            os.remove(out)
        entry['exported'] = False
        entry['exportError'] = f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'
        return entry
    m = onnx.load(out)
    if weights == 'constant':
        m = to_constant_nodes(m)
    e = m.metadata_props.add()
    e.key, e.value = 'fairprune.kind', 'cnn' if kind == 'cnn' else 'vit'
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out)
    # The export computes what torch computes (onnxruntime-node, the model's own batch or 3).
    xb = torch.randn(batch or 3, 3, INPUT, INPUT, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(xb).numpy().ravel()
    got = run_ort(out, xb)
    import numpy as np
    entry.update({'exported': True, 'bytes': os.path.getsize(out), 'irVersion': m.ir_version,
                  'ops': sorted({n.op_type for n in m.graph.node}),
                  'ortMaxAbsDiff': float(np.abs(got - ref).max()), 'maxAbsLogit': float(np.abs(ref).max())})
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', default=None, help='comma-separated row names (others kept from the manifest)')
    ap.add_argument('--list', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.list:
        for r in R:
            print(r[0], '-', r[-1])
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    manifest_path = os.path.join(OUT_DIR, 'manifest.json')
    old = {}
    if a.only and os.path.exists(manifest_path):
        old = {e['name']: e for e in json.load(open(manifest_path))['fixtures']}
    only = set(a.only.split(',')) if a.only else None
    entries = []
    for row in R:
        if only and row[0] not in only and row[0] in old:
            entries.append(old[row[0]])
            continue
        e = {'name': row[0], **export_row(row)}
        print(json.dumps({k: e[k] for k in ('name', 'exported') if k in e} | ({'err': e['exportError']} if not e['exported'] else {'bytes': e['bytes'], 'diff': e['ortMaxAbsDiff']})))
        entries.append(e)
    json.dump({'generator': 'models/export_matrix.py', 'torch': torch.__version__,
               'torchvision': __import__('torchvision').__version__, 'onnx': __import__('onnx').__version__,
               'fixtures': entries}, open(manifest_path, 'w'), indent=1)
    print(f'wrote {manifest_path}')


if __name__ == '__main__':
    main()
