"""Python peer of bench/surgery.ts: the same filter removal on a plain VGG (Conv/Relu/MaxPool chain,
AveragePool/Flatten into Gemm) written the obvious way with onnx + numpy, for a load + prune + save
time and peak-RSS reference. Not a general implementation: it follows single-consumer chains only.

  /usr/bin/python3 bench/surgery_peer.py IN.onnx OUT.onnx KEEPS.json [block|last]

Prints one JSON line {ms, maxRssBytes, params}.
"""
import json
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

TO_CONV = {'Relu', 'BatchNormalization', 'Identity', 'Dropout', 'Clip', 'LeakyRelu'}
PASS = {'Relu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Identity', 'Dropout', 'Clip', 'LeakyRelu'}


def peak_rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    return 0


def main():
    src, dst, keeps_file = sys.argv[1:4]
    scope = sys.argv[4] if len(sys.argv) > 4 else 'block'
    t0 = time.perf_counter()
    model = onnx.load(src)
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {t.name: t for t in g.initializer}
    # torch's deduplicated weights: Identity(initializer)
    def const_name(v):
        while v in producer and producer[v].op_type == 'Identity':
            v = producer[v].input[0]
        return v
    arrays = {}

    def get(node, i):
        name = const_name(node.input[i])
        key = (id(node), i)
        if key not in arrays:
            arrays[key] = numpy_helper.to_array(inits[name])
        return arrays[key]

    def put(node, i, a):
        arrays[(id(node), i)] = a

    keep_of = {}
    for k in json.load(open(keeps_file)):
        pool = producer[k['tap']]
        n = producer[pool.input[0]]
        while n.op_type in TO_CONV:
            n = producer[n.input[0]]
        convs = [n]
        if scope == 'block':
            convs = []
            m = n
            while m is not None and m.op_type != 'MaxPool':
                if m.op_type == 'Conv' and get(m, 1).shape[0] == k['total']:
                    convs.append(m)
                m = producer.get(m.input[0])
        for c in convs:
            keep_of[id(c)] = (c, np.array(k['keep']))
    for c, keep in keep_of.values():
        width = get(c, 1).shape[0]
        put(c, 1, get(c, 1)[keep])
        if len(c.input) > 2:
            put(c, 2, get(c, 2)[keep])
        v = c.output[0]
        while True:
            (u,) = consumers[v]
            if u.op_type == 'BatchNormalization':
                for i in range(1, 5):
                    put(u, i, get(u, i)[keep])
            elif u.op_type == 'Conv':
                put(u, 1, get(u, 1)[:, keep])
                break
            elif u.op_type == 'Flatten':
                (fc,) = consumers[u.output[0]]
                w = get(fc, 1)  # Gemm transB=1: [N, C*H*W]; in-feature block of channel c: c*H*W .. +H*W-1
                hw = w.shape[1] // width
                cols = (keep[:, None] * hw + np.arange(hw)[None, :]).reshape(-1)
                put(fc, 1, w[:, cols])
                break
            elif u.op_type not in PASS:
                raise SystemExit(f'peer: unsupported op {u.op_type}')
            v = u.output[0]
    # Write back every edited array as a fresh initializer owned by its node.
    for (nid, i), a in arrays.items():
        node = next(n for n in g.node if id(n) == nid)
        name = f'{node.input[i]}__peer_{i}'
        t = numpy_helper.from_array(np.ascontiguousarray(a), name)
        g.initializer.append(t)
        node.input[i] = name
    used = {i for n in g.node for i in n.input}
    keep_inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_inits)
    onnx.save(model, dst)
    ms = (time.perf_counter() - t0) * 1000
    params = sum(int(np.prod(t.dims)) for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT)
    print(json.dumps({'ms': ms, 'maxRssBytes': peak_rss(), 'params': params}))


if __name__ == '__main__':
    main()
