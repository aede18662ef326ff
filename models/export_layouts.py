"""Export one small VGG-style CNN (torchvision VGG11 layout at width 1/8, global-average-pool head,
random fixture weights, seed 0) three ways, for the CLI's preprocessing flags:

  fixtures/layout_nchw.onnx        input [B,3,32,32]   (the reference)
  fixtures/layout_nhwc.onnx        input [B,32,32,3]   channels-last, as TensorFlow/Keras exports
                                                         take images (a Transpose into the same net)
  fixtures/layout_dynamic_hw.onnx  input [B,3,H,W]     symbolic height and width

The three share every weight, so calibrating them on the same images (with the right --layout,
--size or --input-shape) must give the same per-filter medians; tests/cli-preprocess.test.ts checks
that. Run from the repository root: /usr/bin/python3 models/export_layouts.py
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import VGG, fixture_init  # noqa: E402


class ChannelsLast(nn.Module):
    """Takes NHWC images and runs the wrapped NCHW network on them."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.permute(0, 3, 1, 2))


def export(model, x, out, dynamic_axes):
    torch.onnx.export(model, x, out, input_names=['input'], output_names=['logits'], opset_version=14,
                      do_constant_folding=True, dynamic_axes=dynamic_axes)
    import onnx
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    kept = {'fairprune.kind': 'cnn'}
    for k, v in kept.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, out)
    print(f'wrote {out} ({os.path.getsize(out) / 1024:.0f} KiB), input {[d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]}')


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    net = VGG(width=0.125, num_classes=6, input_size=32, head='gap')
    fixture_init(net, 0)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    export(net, x, 'fixtures/layout_nchw.onnx', {'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    export(ChannelsLast(net).eval(), x.permute(0, 2, 3, 1).contiguous(), 'fixtures/layout_nhwc.onnx',
           {'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    export(net, x, 'fixtures/layout_dynamic_hw.onnx',
           {'input': {0: 'batch', 2: 'height', 3: 'width'}, 'logits': {0: 'batch'}})
    with torch.no_grad():
        a = net(x)
        b = ChannelsLast(net)(x.permute(0, 2, 3, 1))
        c = net(torch.randn(1, 3, 48, 40))
    print(f'torch: NHWC wrapper vs NCHW max |diff| {float((a - b).abs().max()):.1e}; 48x40 input -> {list(c.shape)}')


if __name__ == '__main__':
    main()
