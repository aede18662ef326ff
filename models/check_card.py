"""Check a committed model against its card with onnxruntime-node: run the ONNX on the test split
(tensors from the library's sharp preprocessing, models/dump_tensors.mjs) and compare accuracy
and per-image predictions with the card's `test_predictions`; record the result in the card.

  /usr/bin/python3 models/check_card.py models/vgg11_pad.onnx
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CLASSES, PAD_DIR, ROOT, dump_tensors, read_pad_split  # noqa: E402
from reference_skewness import ort_logits  # noqa: E402


def main(onnx_path):
    import onnx
    m = onnx.load(onnx_path)
    meta = {p.key: p.value for p in m.metadata_props}
    pre = json.loads(meta['fairprune.preprocess'])
    assert json.loads(meta['fairprune.classes']) == CLASSES
    card_path = os.path.splitext(onnx_path)[0] + '.card.json'
    card = json.load(open(card_path))
    rows = [r for r in read_pad_split() if r['split'] == 'test']
    assert [r['image'] for r in rows] == card['test_images']
    x = dump_tensors([os.path.join(PAD_DIR, r['image']) for r in rows], pre,
                     'check_' + os.path.basename(onnx_path).replace('.onnx', ''))
    logits = ort_logits(onnx_path, x)
    pred = logits.argmax(1)
    y = np.array([CLASSES.index(r['diagnostic']) for r in rows])
    same = int((pred == np.array(card['test_predictions'])).sum())
    acc = float((pred == y).mean())
    res = {'runtime': 'onnxruntime-node (models/run_onnx.mjs)', 'test_images': len(rows),
           'predictions_equal_to_card': same, 'accuracy': acc,
           'accuracy_equal_to_card': abs(acc - card['metrics']['test']['accuracy']) < 1e-12}
    card['onnxruntime_node_check'] = res
    with open(card_path, 'w') as fh:
        json.dump(card, fh, indent=1)
        fh.write('\n')
    print(json.dumps(res))


if __name__ == '__main__':
    main(sys.argv[1])
