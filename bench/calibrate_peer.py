"""Python peer of bench/calibrate.ts: the same calibration done the PyTorch way, on the same
preprocessed tensors, for a time comparison and an independent check of the library's medians.

torchvision vgg11 with the ONNX file's weights (copied by initializer name, Identity aliases
followed), forward hooks on the five MaxPool modules, scipy.stats.skew (bias=True, float64) per
image and channel over H*W in each batch, constant maps -> 0, median over images.

  /usr/bin/python3 bench/calibrate_peer.py model.onnx x.f32 lib.json [--rounds 3]

Bench-only: never imported by src/ or tests/.
"""
import argparse
import json
import time

import numpy as np
import onnx
import scipy.stats
import torch
import torchvision
from onnx import numpy_helper


def skew_rows(a):
    """a: [B, C, n] -> [B, C] population skewness in float64, constant maps (SPEC rule) -> 0."""
    a = np.asarray(a, dtype=np.float64)
    g = scipy.stats.skew(a, axis=-1, bias=True)
    mean = a.mean(axis=-1)
    m2 = ((a - mean[..., None]) ** 2).mean(axis=-1)
    return np.where(m2 <= 1e-12 * mean ** 2 + 1e-30, 0.0, g)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('x')
    ap.add_argument('lib')
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    lib = json.load(open(a.lib))
    shape = lib['shape']
    batch = lib['batch']
    x = np.fromfile(a.x, dtype='<f4').reshape(shape)

    m = onnx.load(a.model)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:  # the exporter aliases equal (zero) biases through Identity nodes
        if n.op_type == 'Identity' and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    num_classes = inits['classifier.6.weight'].shape[0]
    net = torchvision.models.vgg11(num_classes=num_classes)
    net.load_state_dict({k: torch.from_numpy(inits[k].copy()) for k in net.state_dict()})
    net.eval()

    # '/features/features.2/MaxPool' -> 'features.2'
    names = [t['node'].strip("'").split(' ')[0].strip('/').split('/')[-2] for t in lib['taps']]
    mods = dict(net.named_modules())
    assert all(isinstance(mods[n], torch.nn.MaxPool2d) for n in names), names

    def plain():
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, shape[0], batch):
                net(torch.from_numpy(x[s:s + batch]))
        return time.perf_counter() - t0

    def hooked():
        per = {n: [] for n in names}
        hooks = []
        for n in names:
            def hook(mod, inp, out, n=n):
                o = out.detach().numpy()
                per[n].append(skew_rows(o.reshape(o.shape[0], o.shape[1], -1)))
            hooks.append(mods[n].register_forward_hook(hook))
        t0 = time.perf_counter()
        with torch.no_grad():
            for s in range(0, shape[0], batch):
                net(torch.from_numpy(x[s:s + batch]))
        medians = {n: np.median(np.concatenate(per[n], axis=0), axis=0) for n in names}
        dt = time.perf_counter() - t0
        for h in hooks:
            h.remove()
        return dt, medians

    plains, hookeds = [], []
    medians = None
    for r in range(a.rounds):
        for side in (('plain', 'hooked') if r % 2 == 0 else ('hooked', 'plain')):
            if side == 'plain':
                plains.append(plain())
            else:
                dt, medians = hooked()
                hookeds.append(dt)
        print(f'round {r + 1}: torch inference {plains[-1]:.2f} s, torch hooks + scipy {hookeds[-1]:.2f} s')
    # Best rounds, as in bench/calibrate.ts (shared machine).
    tp, th = float(np.min(plains)), float(np.min(hookeds))
    print(f'torch inference, best round:                {tp:.2f} s')
    print(f'torch hooks + scipy.stats.skew, best round: {th:.2f} s  (ratio {th / tp:.3f}x)')
    print(f'library calibration {lib["calibration_ms"] / 1000:.2f} s vs torch hooks + scipy {th:.2f} s: '
          f'{lib["calibration_ms"] / 1000 / th:.2f}x; onnxruntime inference vs torch inference: '
          f'{lib["plain_onnxruntime_ms"] / 1000 / tp:.2f}x')
    worst = 0.0
    same_keep = True
    for t, n, keep in zip(lib['taps'], names, lib['keep']):
        d = float(np.max(np.abs(np.asarray(t['medians']) - medians[n])))
        worst = max(worst, d)
        ref_keep = [int(i) for i in np.nonzero(medians[n] > 0)[0]]
        same_keep &= ref_keep == keep
        print(f'  {t["name"]}: {len(t["medians"])} channels, max |median diff| {d:.2e}, '
              f'keep {len(keep)} (library) / {len(ref_keep)} (peer){"" if ref_keep == keep else "  DIFFERENT"}')
    print(f'medians agree to {worst:.2e}; keep sets {"identical" if same_keep else "DIFFER"}')


if __name__ == '__main__':
    main()
