"""The export matrix for surgery tests: small models exported by torch.onnx (1.13) under the
settings real files come with (opset, static or dynamic batch, initializers listed as graph
inputs, constant folding on/off, BatchNorm folded or not, weights held in Constant nodes), written
to fixtures/matrix/ with a manifest.json that describes every file (and every combination the
exporter refused). CI reads only the committed files; this script is how they were made.

  nice -n 10 /usr/bin/python3 models/export_matrix.py [--only NAME,...] [--list]

The rows are a covering subset, not the full product: every setting appears on every family where
it changes the graph the surgery sees, and each row varies few settings at once so a failure names
its cause. See fixtures/README.md ("Export matrix") for the reasoning per row.

Rows with rewrite 'torch2-style' are NOT torch 2 exports (no torch 2 is installed here): the torch
1.13 export at the row's export opset is rewritten the way torch 2.x's exporter writes these ops at
opset 20: each LayerNorm decomposition (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add)
becomes one LayerNormalization node, each erf GELU (Div by sqrt 2, Erf, Add 1, Mul x, Mul 0.5)
one Gelu node, the default opset import 20 and the IR version 9, with the few ops whose signature
changed by opset 20 brought up to it (ReduceMean axes as an input, Split's num_outputs). onnx 1.12's
checker does not know opset 20, so those files are not checked (the manifest says so); instead
onnxruntime-node runs the rewrite beside the original export, and they must agree within 1e-5.
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
    ('swin_t_op14_nofold', 'swin_t', 14, 0, False, False, None, 'initializer', 'constant folding off: relative position bias gathered from its table at run time'),
    # --- opsets 15 and 16 (torch 1.13 exports them as well).
    ('vgg11_op15_dyn', 'vgg11', 15, 0, False, True, None, 'initializer', 'opset 15, dynamic batch'),
    ('vgg11_op16_b2', 'vgg11', 16, 2, False, True, None, 'initializer', 'opset 16, static batch 2'),
    ('vit_tv_op15_b3', 'vit_tv', 15, 3, False, True, None, 'initializer', 'opset 15, static batch 3'),
    ('vit_tv_op16_dyn', 'vit_tv', 16, 0, False, True, None, 'initializer', 'opset 16, dynamic batch'),
    ('vit_timm_op15_b2', 'vit_timm', 15, 2, False, True, None, 'initializer', 'opset 15, static batch 2'),
    ('vit_timm_op16_dyn', 'vit_timm', 16, 0, False, True, None, 'initializer', 'opset 16, dynamic batch'),
    ('vit_hf_op15_dyn', 'vit_hf', 15, 0, False, True, None, 'initializer', 'opset 15, dynamic batch'),
    ('vit_hf_op16_b3', 'vit_hf', 16, 3, False, True, None, 'initializer', 'opset 16, static batch 3'),
    ('swin_t_op16_dyn', 'swin_t', 16, 0, False, True, None, 'initializer', 'opset 16, dynamic batch'),
    # --- torch 2.x-style graphs: REWRITES of torch 1.13 exports (see the docstring), not torch 2 exports.
    ('vit_timm_t2rw_op20_dyn', 'vit_timm', 14, 0, False, True, None, 'initializer', 'rewrite: LayerNormalization + Gelu ops at opset 20 (torch 2.x style)', 'torch2-style'),
    ('vit_hf_t2rw_op20_b2', 'vit_hf', 14, 2, False, True, None, 'initializer', 'rewrite: LayerNormalization + Gelu ops at opset 20, static batch 2', 'torch2-style'),
    ('swin_t_t2rw_op20_dyn', 'swin_t', 14, 0, False, True, None, 'initializer', 'rewrite: LayerNormalization + Gelu ops at opset 20 (windowed attention)', 'torch2-style'),
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


def _const_value(g, name):
    """The numpy value of an initializer or Constant node output, or None."""
    from onnx import numpy_helper
    for t in g.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in g.node:
        if n.op_type == 'Constant' and n.output[0] == name:
            for a in n.attribute:
                if a.name == 'value':
                    return numpy_helper.to_array(a.t)
    return None


def rewrite_torch2_style(m):
    """LayerNorm decompositions -> LayerNormalization, erf GELUs -> Gelu, opset 20 (see the docstring).
    Returns (model, counts); raises when a pattern is only half there, so a rewrite never guesses."""
    import numpy as np
    from onnx import helper
    g = m.graph
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    drop, add_before = set(), {}
    counts = {'LayerNormalization': 0, 'Gelu': 0}

    def only(value, op):
        c = cons.get(value, [])
        return c[0] if len(c) == 1 and c[0].op_type == op else None

    def scalar(name, want=None):
        v = _const_value(g, name)
        if v is None or v.size != 1:
            return None
        v = float(v.reshape(()))
        return v if want is None or abs(v - want) < 1e-6 * max(1, abs(want)) else None

    for div in [n for n in g.node if n.op_type == 'Div']:
        sub, sqrt = prod.get(div.input[0]), prod.get(div.input[1])
        if not sub or not sqrt or sub.op_type != 'Sub' or sqrt.op_type != 'Sqrt':
            continue
        mean = prod.get(sub.input[1])
        add_eps = prod.get(sqrt.input[0])
        var = prod.get(add_eps.input[0]) if add_eps and add_eps.op_type == 'Add' else None
        pw = prod.get(var.input[0]) if var and var.op_type == 'ReduceMean' else None
        if not (mean and mean.op_type == 'ReduceMean' and mean.input[0] == sub.input[0] and pw and pw.op_type == 'Pow'
                and pw.input[0] == sub.output[0] and scalar(pw.input[1], 2.0) is not None):
            continue
        eps = scalar(add_eps.input[1])
        mul, = [n for n in cons[div.output[0]] if n.op_type == 'Mul'] or [None]
        bias = only(mul.output[0], 'Add') if mul else None
        if eps is None or not mul or not bias or _const_value(g, mul.input[1]) is None or _const_value(g, bias.input[1]) is None:
            raise RuntimeError(f'LayerNorm at {div.name}: decomposition found without a constant eps/scale/bias')
        for n in (mean, sub, pw, var, add_eps, sqrt, div, mul, bias):
            drop.add(id(n))
        ln = helper.make_node('LayerNormalization', [sub.input[0], mul.input[1], bias.input[1]], [bias.output[0]],
                              name=div.name.rsplit('/', 1)[0] + '/LayerNormalization', axis=-1, epsilon=eps)
        add_before.setdefault(id(bias), []).append(ln)
        counts['LayerNormalization'] += 1

    for erf in [n for n in g.node if n.op_type == 'Erf']:
        div = prod.get(erf.input[0])
        add1 = only(erf.output[0], 'Add')
        mul_x = only(add1.output[0], 'Mul') if add1 else None
        half = only(mul_x.output[0], 'Mul') if mul_x else None
        if not (div and div.op_type == 'Div' and scalar(div.input[1], 2 ** 0.5) is not None and add1 and scalar(add1.input[1], 1.0) is not None
                and mul_x and div.input[0] in mul_x.input and half and scalar(half.input[1], 0.5) is not None):
            raise RuntimeError(f'Erf {erf.name} is not an erf GELU')
        for n in (div, erf, add1, mul_x, half):
            drop.add(id(n))
        gelu = helper.make_node('Gelu', [div.input[0]], [half.output[0]], name=erf.name.rsplit('/', 1)[0] + '/Gelu')
        add_before.setdefault(id(half), []).append(gelu)
        counts['Gelu'] += 1

    nodes = []
    for n in g.node:
        nodes.extend(add_before.get(id(n), []))
        if id(n) not in drop:
            nodes.append(n)
    # Opset 18: Reduce* axes move from an attribute to an input; Split needs split or num_outputs.
    for n in nodes:
        axes = [a for a in n.attribute if a.name == 'axes']
        if n.op_type.startswith('Reduce') and n.op_type != 'ReduceSum' and axes:
            name = f'{n.name}/axes'
            g.initializer.append(helper.make_tensor(name, 7, [len(axes[0].ints)], list(axes[0].ints)))
            n.attribute.remove(axes[0])
            n.input.append(name)
        if n.op_type == 'Split' and len(n.input) < 2 and not any(a.name == 'num_outputs' for a in n.attribute):
            n.attribute.append(helper.make_attribute('num_outputs', len(n.output)))
    del g.node[:]
    g.node.extend(nodes)
    # Drop Constant nodes no longer read (the pattern constants).
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [n for n in g.node if not (n.op_type == 'Constant' and n.output[0] not in used)]
    del g.node[:]
    g.node.extend(keep)
    for o in m.opset_import:
        if o.domain in ('', 'ai.onnx'):
            o.version = 20
    m.ir_version = 9
    left = {n.op_type for n in g.node} & {'Erf', 'ReduceMean'}
    if left:
        raise RuntimeError(f'rewrite left {sorted(left)} in the graph')
    return m, counts


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
    name, family, opset, batch, kiai, fold, bn, weights, why = row[:9]
    rewrite = row[9] if len(row) > 9 else None
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
    if rewrite == 'torch2-style':
        m, counts = rewrite_torch2_style(m)
        onnx.save(m, out)
        rewritten = run_ort(out, xb)
        diff = float(np.abs(rewritten - got).max())
        if diff > 1e-5:
            raise RuntimeError(f'{name}: the rewrite differs from the export by {diff} in onnxruntime')
        entry.update({'opset': 20, 'exportOpset': opset,
                      'rewrite': f'torch 1.13 opset-{opset} export rewritten (not a torch 2 export): '
                                 f'{counts["LayerNormalization"]} LayerNorm decompositions -> LayerNormalization, '
                                 f'{counts["Gelu"]} erf GELUs -> Gelu, opset 20, IR 9',
                      'rewriteOrtMaxAbsDiff': diff,
                      'checkerSkipped': 'onnx 1.12 checker does not know opset 20 / IR 9'})
        got = rewritten
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
