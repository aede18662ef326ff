"""Export torchvision topologies (VGG11, VGG11-BN, VGG with a global-average-pool head,
VisionTransformer / vit_b_16) to ONNX at any width, depth and opset, with random weights
(fixed seed). Also builds the timm-style and Hugging-Face-style tiny ViTs used as fixtures.

Examples (run from the repository root with Debian's Python):
  /usr/bin/python3 models/export_torchvision.py --arch vgg11 --width 0.125 --input 32 --num-classes 6 --opset 14 --out fixtures/vgg11_w8.onnx
  /usr/bin/python3 models/export_torchvision.py --arch vgg11 --full --num-classes 5 --out models/full/vgg11.onnx
  /usr/bin/python3 models/export_torchvision.py --arch vit_b_16 --full --num-classes 5 --out models/full/vit_b_16.onnx

Input name `input` [B,3,S,S] float32, output `logits` [B,num_classes], dynamic batch axis.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

VGG11_CFG = [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']


def _ch(c, width):
    return max(1, int(round(c * width)))


def make_vgg_features(width=1.0, batch_norm=False, cfg=VGG11_CFG):
    """torchvision.models.vgg.make_layers with scaled channel counts (same module indices)."""
    layers = []
    cin = 3
    for v in cfg:
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            c = _ch(v, width)
            layers.append(nn.Conv2d(cin, c, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU(inplace=True))
            cin = c
    return nn.Sequential(*layers), cin


class VGG(nn.Module):
    """torchvision VGG layout (features / avgpool / classifier) with configurable width and head.

    head='torchvision': AdaptiveAvgPool2d((7,7)) + Flatten + 3-layer classifier (as torchvision;
                        the last feature map must divide 7x7 evenly for ONNX export, e.g. 224 px).
    head='flatten':     no average pool (Identity); Flatten of the last max-pool map into the
                        3-layer classifier (explicit; works at any input size that is a multiple of 32).
    head='gap':         AdaptiveAvgPool2d(1) + Flatten + a single Linear.
    """

    def __init__(self, width=1.0, batch_norm=False, num_classes=1000, input_size=224, head='torchvision',
                 hidden=None, dropout=0.5, init_weights=True):
        super().__init__()
        self.features, c = make_vgg_features(width, batch_norm)
        fm = input_size // 32
        hidden = hidden or _ch(4096, width)
        if head == 'gap':
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, num_classes)
        else:
            if head == 'torchvision':
                self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
                nin = c * 7 * 7
            elif head == 'flatten':
                self.avgpool = nn.Identity()
                nin = c * fm * fm
            else:
                raise ValueError(head)
            self.classifier = nn.Sequential(
                nn.Linear(nin, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(hidden, num_classes))
        if init_weights:  # torchvision's VGG init
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build_vit_b16(image_size=224, patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072,
                  num_classes=1000):
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                             num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, num_classes=num_classes)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def fixture_init(model, seed=0):
    """Weights that make small fixtures numerically useful: non-zero biases everywhere (so bias
    pruning is exercised and the exporter does not deduplicate identical zero biases into Identity
    nodes) and Linear weights N(0, 1/fan_in) so logits are O(1) rather than ~1e-3."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 1.0 / m.in_features ** 0.5, generator=g)
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1, generator=g)
            if isinstance(m, nn.MultiheadAttention) and m.in_proj_bias is not None:
                m.in_proj_bias.uniform_(-0.1, 0.1, generator=g)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)


def warm_bn(model, input_size, steps=5, seed=0):
    """Train-mode forwards on random data so BatchNorm running stats are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.5
    with torch.no_grad():
        for i in range(steps):
            x = torch.randn(8, 3, input_size, input_size, generator=g) * (1 + 0.3 * i) + 0.2 * i
            model(x)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
            # non-trivial affine parameters too
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
    model.eval()


def export_onnx(model, out, input_size, opset, metadata=None, check=True):
    """torch.onnx.export with the project's conventions. BatchNorm is kept as BatchNormalization
    (TrainingMode.PRESERVE on an eval-mode model skips the Conv+BN fusion of the eval peephole)."""
    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    x = torch.randn(2, 3, input_size, input_size)
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    kw = {}
    if has_bn:
        kw['training'] = torch.onnx.TrainingMode.PRESERVE
    # Not under torch.no_grad(): with grad enabled and parameters requiring grad, torch 1.13's
    # nn.MultiheadAttention avoids its fused fast path (aten::_native_multi_head_attention, which
    # has no ONNX export) and exports the decomposed attention.
    torch.onnx.export(model, x, out, input_names=['input'], output_names=['logits'], opset_version=opset,
                      do_constant_folding=True,
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, **kw)
    import onnx
    m = onnx.load(out)
    if metadata:
        for k, v in metadata.items():
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, out)
    if check:
        onnx.checker.check_model(m)
    return m


def verify_with_ort(model, onnx_path, input_size, n=3, seed=123):
    """Run the ONNX with onnxruntime-node (models/run_onnx.mjs) on random inputs and compare
    with the torch model in eval mode. Returns the max abs difference of the logits."""
    import subprocess
    import tempfile
    import numpy as np
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, input_size, input_size, generator=g)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    with tempfile.TemporaryDirectory() as d:
        xi, yo = os.path.join(d, 'x.f32'), os.path.join(d, 'y.f32')
        x.numpy().astype('<f4').tofile(xi)
        subprocess.run(['node', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'run_onnx.mjs'),
                        onnx_path, xi, yo, '--shape', f'{n},3,{input_size},{input_size}'], check=True,
                       stderr=subprocess.DEVNULL)
        got = np.fromfile(yo, dtype='<f4').reshape(ref.shape)
    return float(np.abs(got - ref).max()), float(np.abs(ref).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--arch', required=True, choices=['vgg11', 'vgg11_bn', 'vgg_gap', 'vgg_gap_bn', 'vit_b_16',
                                                      'vit_timm', 'vit_hf'])
    ap.add_argument('--out', required=True)
    ap.add_argument('--full', action='store_true', help='full-size torchvision model (vgg11/vgg11_bn at 224 px, '
                    'torchvision head; vit_b_16 at 224 px); overrides width/size flags')
    ap.add_argument('--width', type=float, default=1.0, help='VGG channel multiplier (also scales hidden 4096)')
    ap.add_argument('--hidden', type=int, default=None, help='VGG classifier hidden size (default 4096*width)')
    ap.add_argument('--head', default=None, choices=['torchvision', 'flatten'], help='VGG head for vgg11/vgg11_bn '
                    '(default: torchvision with --full, else flatten)')
    ap.add_argument('--input', type=int, default=224, help='input side (image_size for ViTs)')
    ap.add_argument('--num-classes', type=int, default=1000)
    ap.add_argument('--opset', type=int, default=14, choices=[13, 14, 15, 16, 17])
    ap.add_argument('--patch', type=int, default=16)
    ap.add_argument('--layers', type=int, default=12)
    ap.add_argument('--heads', type=int, default=12)
    ap.add_argument('--hidden-dim', type=int, default=768)
    ap.add_argument('--mlp-dim', type=int, default=3072)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--verify', action='store_true', help='compare onnxruntime-node output with torch')
    ap.add_argument('--init', choices=['default', 'fixture'], default=None,
                    help='fixture: non-zero biases, N(0,1/fan_in) Linear weights, random LayerNorm affine '
                         '(default without --full); default: the architecture\'s own init')
    ap.add_argument('--bn-warmup', type=int, default=5, help='random train-mode forwards for BN running stats')
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    if a.arch.startswith('vgg'):
        bn = a.arch.endswith('_bn')
        if a.full:
            import torchvision
            model = (torchvision.models.vgg11_bn if bn else torchvision.models.vgg11)(num_classes=a.num_classes)
            if a.arch.startswith('vgg_gap'):
                model.avgpool = nn.AdaptiveAvgPool2d(1)
                model.classifier = nn.Linear(512, a.num_classes)
            a.input = 224
        else:
            head = 'gap' if a.arch.startswith('vgg_gap') else (a.head or 'flatten')
            model = VGG(a.width, bn, a.num_classes, a.input, head, a.hidden)
        if bn:
            warm_bn(model, a.input, a.bn_warmup, a.seed)
        kind = 'cnn'
    elif a.arch == 'vit_b_16':
        if a.full:
            import torchvision
            model = torchvision.models.vit_b_16(num_classes=a.num_classes)
            a.input = 224
        else:
            model = build_vit_b16(a.input, a.patch, a.layers, a.heads, a.hidden_dim, a.mlp_dim, a.num_classes)
        kind = 'vit'
    elif a.arch == 'vit_timm':
        from vit_timm import VisionTransformerTimm
        model = VisionTransformerTimm(img_size=a.input, patch_size=a.patch, embed_dim=a.hidden_dim, depth=a.layers,
                                      num_heads=a.heads, mlp_ratio=a.mlp_dim / a.hidden_dim,
                                      num_classes=a.num_classes)
        kind = 'vit'
    else:
        from vit_hf import ViTHF
        model = ViTHF(image_size=a.input, patch_size=a.patch, hidden=a.hidden_dim, layers=a.layers, heads=a.heads,
                      mlp=a.mlp_dim, num_classes=a.num_classes)
        kind = 'vit'
    if (a.init or ('default' if a.full else 'fixture')) == 'fixture':
        fixture_init(model, a.seed)
    model.eval()
    print(f'{a.arch}: {n_params(model):,} parameters ({n_params(model) / 1e6:.2f} M)')
    export_onnx(model, a.out, a.input, a.opset, {'fairprune.kind': kind}, check=True)
    print(f'wrote {a.out} ({os.path.getsize(a.out) / 2**20:.2f} MiB)')
    if a.verify:
        d, scale = verify_with_ort(model, a.out, a.input)
        print(f'onnxruntime vs torch: max |diff| {d:.2e} (max |logit| {scale:.2f})')


if __name__ == '__main__':
    main()
