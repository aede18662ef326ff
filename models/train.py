"""Train the committed PAD-UFES-20 six-class classifiers and export them to ONNX with a model card.

  /usr/bin/python3 models/train.py --model vgg --out models/vgg11_pad.onnx
  /usr/bin/python3 models/train.py --model vit --out models/vit_tiny_pad.onnx

Images are never decoded in Python: every tensor comes from models/dump_tensors.mjs (the
library's sharp preprocessing), cached under models/.cache/. Training crops/augments the
tensors of a larger "train" dump (resize R, crop R) in torch; validation/test use the exact
evaluation recipe stored in the ONNX metadata (resize R, crop C).
Split: models/splits/pad-ufes-20.csv (models/common.py, seed 20250101, by patient).
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CLASSES, PAD_DIR, SPLIT_CSV, SPLIT_SEED, ROOT, dump_tensors, read_pad_split,  # noqa: E402
                    set_fairprune_metadata)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

CONFIGS = {
    'vgg': dict(
        preprocess={'resize': 146, 'crop': 128, 'mean': IMAGENET_MEAN, 'std': IMAGENET_STD,
                    'interpolation': 'bilinear'},
        epochs=80, batch=32, lr=1e-3, wd=5e-2, warmup=5, opset=17, kind='cnn', label_smoothing=0.1,
        scale=(0.45, 1.0)),
    'vit': dict(
        preprocess={'resize': 248, 'crop': 224, 'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5],
                    'interpolation': 'bicubic'},
        epochs=20, batch=32, lr=1e-4, wd=5e-2, warmup=2, opset=17, kind='vit', label_smoothing=0.1,
        scale=(0.45, 1.0)),
}


def build_model(kind, num_classes=6, pretrained=True):
    if kind == 'vgg':
        from export_torchvision import VGG
        # torchvision vgg11 structure at width 1/4: 8 convs + ReLU, 5 max-pools, explicit Flatten
        # of the 4x4 map (no adaptive average pool), 3 Linear layers with hidden 256.
        # Trained with BatchNorm after every conv (plain VGG11 does not start learning from scratch on
        # 431 images in the time we have); fold_bn() folds the BN into the convs before export, so
        # the exported graph is the plain vgg11 topology (Conv -> Relu -> MaxPool, no BN).
        return VGG(width=0.25, batch_norm=True, num_classes=num_classes, input_size=128, head='flatten',
                   hidden=256, dropout=0.5)
    from vit_timm import VisionTransformerTimm, load_timm_npz
    from common import PRETRAINED_VIT
    m = VisionTransformerTimm(img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
                              num_classes=1000)
    if pretrained:
        load_timm_npz(m, PRETRAINED_VIT)
    m.head = nn.Linear(192, num_classes)
    nn.init.trunc_normal_(m.head.weight, std=0.02)
    nn.init.zeros_(m.head.bias)
    return m


def fold_bn(model):
    """VGG with BatchNorm (eval statistics) -> the same function as a plain VGG (no BN):
    w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta."""
    from export_torchvision import VGG
    feats = list(model.features)
    width_convs = [m for m in feats if isinstance(m, nn.Conv2d)]
    plain = VGG(width=0.25, batch_norm=False, num_classes=model.classifier[-1].out_features, input_size=128,
                head='flatten', hidden=model.classifier[0].out_features, dropout=0.5)
    plain_convs = [m for m in plain.features if isinstance(m, nn.Conv2d)]
    assert len(width_convs) == len(plain_convs) == 8
    with torch.no_grad():
        for i, m in enumerate(feats):
            if isinstance(m, nn.Conv2d):
                bn = feats[i + 1]
                assert isinstance(bn, nn.BatchNorm2d)
                s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                dst = plain_convs[width_convs.index(m)]
                dst.weight.copy_(m.weight * s.view(-1, 1, 1, 1))
                dst.bias.copy_((m.bias - bn.running_mean) * s + bn.bias)
        plain.classifier.load_state_dict(model.classifier.state_dict())
    return plain.eval()


# ----------------------------------------------------------------------------- augmentation
def augment(x, crop, mean, std, gen, scale=(0.45, 1.0)):
    """x: [B,3,R,R] normalized tensors of the train dump. Random resized crop -> crop, flips,
    90-degree rotations, brightness/contrast/saturation jitter. Returns [B,3,crop,crop]."""
    B, _, H, W = x.shape
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    out = torch.empty(B, 3, crop, crop)
    r = torch.rand(B, 8, generator=gen)
    for i in range(B):
        area = H * W * (scale[0] + (scale[1] - scale[0]) * r[i, 0].item())
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * r[i, 1].item())
        w = min(W, int(round(math.sqrt(area * ratio))))
        h = min(H, int(round(math.sqrt(area / ratio))))
        top = int(r[i, 2].item() * (H - h + 1)) if H > h else 0
        left = int(r[i, 3].item() * (W - w + 1)) if W > w else 0
        patch = x[i:i + 1, :, top:top + h, left:left + w]
        out[i:i + 1] = F.interpolate(patch, size=(crop, crop), mode='bilinear', align_corners=False,
                                     antialias=(h > crop or w > crop))
        k = int(r[i, 4].item() * 4)
        if k:
            out[i] = torch.rot90(out[i], k, dims=(1, 2))
        if r[i, 5].item() < 0.5:
            out[i] = torch.flip(out[i], dims=(2,))
    # colour jitter in [0,1] space
    img = out * std_t + mean_t
    b = 1 + (torch.rand(B, 1, 1, 1, generator=gen) - 0.5) * 0.3
    c = 1 + (torch.rand(B, 1, 1, 1, generator=gen) - 0.5) * 0.3
    s = 1 + (torch.rand(B, 1, 1, 1, generator=gen) - 0.5) * 0.3
    img = img * b
    m = img.mean(dim=(1, 2, 3), keepdim=True)
    img = (img - m) * c + m
    grey = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
    img = (img - grey) * s + grey
    img = img.clamp(0, 1)
    return (img - mean_t) / std_t


# ----------------------------------------------------------------------------- metrics
def metrics(y, p, k=6):
    y = np.asarray(y)
    p = np.asarray(p)
    cm = np.zeros((k, k), dtype=int)
    for a, b in zip(y, p):
        cm[a, b] += 1
    f1s, prec, rec = [], [], []
    for c in range(k):
        tp = cm[c, c]
        fp = cm[:, c].sum() - tp
        fn = cm[c, :].sum() - tp
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0)
        prec.append(pr)
        rec.append(rc)
    return {'accuracy': float((y == p).mean()) if len(y) else float('nan'), 'macro_f1': float(np.mean(f1s)),
            'macro_precision': float(np.mean(prec)), 'macro_recall': float(np.mean(rec)),
            'per_class_f1': {CLASSES[c]: float(f1s[c]) for c in range(k)}, 'confusion': cm.tolist()}


def chance_levels(train_y, test_y, k=6):
    p = np.bincount(train_y, minlength=k) / len(train_y)
    q = np.bincount(test_y, minlength=k) / len(test_y)
    # random guess drawn from the training prior: E[precision_k] = q_k, recall_k = p_k
    f1_prior = float(np.mean([2 * p[c] * q[c] / (p[c] + q[c]) if p[c] + q[c] else 0 for c in range(k)]))
    maj = int(np.argmax(p))
    f1_uniform = float(np.mean([2 * (1 / k) * q[c] / (1 / k + q[c]) if q[c] else 0 for c in range(k)]))
    return {
        'random_by_train_prior': {'expected_accuracy': float((p * q).sum()), 'expected_macro_f1': f1_prior},
        'uniform_random': {'expected_accuracy': 1 / k, 'expected_macro_f1': f1_uniform},
        'majority_class': {'class': CLASSES[maj], 'accuracy': float(q[maj]),
                           'macro_f1': float(2 * q[maj] / (1 + q[maj]) / k)},
    }


@torch.no_grad()
def predict(model, x, batch=64):
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        out.append(model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))))
    return torch.cat(out).numpy()


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True, choices=['vgg', 'vit'])
    ap.add_argument('--out', required=True)
    ap.add_argument('--epochs', type=int, default=None)
    ap.add_argument('--lr', type=float, default=None)
    ap.add_argument('--batch', type=int, default=None)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--max-minutes', type=float, default=None, help='stop training after this wall time')
    ap.add_argument('--split-csv', default=None,
                    help='CSV with the columns of models/splits/pad-ufes-20.csv (image, diagnostic, group, split) '
                         'to train/validate/test on instead of the default split (models/train_folds.py)')
    ap.add_argument('--tag', default=None, help='name of the checkpoint/logit files in models/.cache/ '
                                                '(default: the model name)')
    a = ap.parse_args()
    cfg = dict(CONFIGS[a.model])
    for k in ('epochs', 'lr', 'batch'):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    split_csv = a.split_csv or SPLIT_CSV
    rows = read_pad_split(split_csv)
    tag = a.tag or a.model
    paths = [os.path.join(PAD_DIR, r['image']) for r in rows]
    y_all = np.array([CLASSES.index(r['diagnostic']) for r in rows])
    split = np.array([r['split'] for r in rows])
    group = np.array([r['group'] for r in rows])
    pre = cfg['preprocess']
    train_pre = dict(pre, crop=pre['resize'])
    idx = {s: np.nonzero(split == s)[0] for s in ('train', 'val', 'test')}
    t0 = time.time()
    x_eval = dump_tensors(paths, pre, f'pad_{a.model}_eval')
    if a.split_csv:
        # every image at the train recipe once, shared by all splits (folds) of the same images
        x_train = dump_tensors(paths, train_pre, f'pad_{a.model}_train_all')[idx['train']]
    else:
        x_train = dump_tensors([paths[i] for i in idx['train']], train_pre, f'pad_{a.model}_train')
    print(f'dumped tensors in {time.time() - t0:.1f}s: eval {x_eval.shape}, train {x_train.shape}', flush=True)
    y_train = torch.from_numpy(y_all[idx['train']])
    x_train_t = torch.from_numpy(x_train)

    model = build_model(a.model)
    counts = np.bincount(y_all[idx['train']], minlength=6)
    weights = torch.tensor(len(idx['train']) / (6 * counts), dtype=torch.float32)
    crit = nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg['label_smoothing'])
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and 'pos_embed' not in n and 'cls_token' not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and 'pos_embed' not in n
                                                                and 'cls_token' not in n)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': cfg['wd']}, {'params': no_decay, 'weight_decay': 0}],
                            lr=cfg['lr'])
    n_train = len(idx['train'])
    steps_per_epoch = math.ceil(n_train / cfg['batch'])
    total = cfg['epochs'] * steps_per_epoch
    warm = cfg['warmup'] * steps_per_epoch

    def lr_at(step):
        if step < warm:
            return cfg['lr'] * (step + 1) / warm
        return cfg['lr'] * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    best = {'f1': -1, 'acc': -1, 'epoch': -1}
    best_state = None
    history = []
    step = 0
    t_start = time.time()
    epochs_run = 0
    for ep in range(cfg['epochs']):
        model.train()
        perm = torch.randperm(n_train, generator=gen)
        tl, tn = 0.0, 0
        for b in range(steps_per_epoch):
            bi = perm[b * cfg['batch']:(b + 1) * cfg['batch']]
            xb = augment(x_train_t[bi], pre['crop'], pre['mean'], pre['std'], gen, cfg['scale'])
            yb = y_train[bi]
            for g in opt.param_groups:
                g['lr'] = lr_at(step)
            loss = crit(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tl += loss.item() * len(bi)
            tn += len(bi)
        epochs_run = ep + 1
        pv = predict(model, x_eval[idx['val']]).argmax(1)
        mv = metrics(y_all[idx['val']], pv)
        history.append({'epoch': ep + 1, 'train_loss': tl / tn, 'val_acc': mv['accuracy'], 'val_macro_f1': mv['macro_f1']})
        improved = (mv['macro_f1'], mv['accuracy']) > (best['f1'], best['acc'])
        if improved:
            best = {'f1': mv['macro_f1'], 'acc': mv['accuracy'], 'epoch': ep + 1}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        el = time.time() - t_start
        print(f'ep {ep + 1:3d} loss {tl / tn:.4f} val acc {mv["accuracy"]:.3f} f1 {mv["macro_f1"]:.3f}'
              f'{" *" if improved else ""}  [{el / 60:.1f} min]', flush=True)
        if a.max_minutes and el / 60 > a.max_minutes:
            print('stopping: --max-minutes reached', flush=True)
            break
    train_time = time.time() - t_start
    model.load_state_dict(best_state)
    model.eval()
    if a.model == 'vgg':
        with torch.no_grad():
            xv = torch.from_numpy(x_eval[idx['val']][:32])
            ref = model(xv)
            model = fold_bn(model)
            diff = float((model(xv) - ref).abs().max())
        print(f'BN folded into convs: max |logit diff| on 32 val images = {diff:.2e}', flush=True)
    os.makedirs(os.path.join(ROOT, 'models', '.cache'), exist_ok=True)
    torch.save(best_state, os.path.join(ROOT, 'models', '.cache', f'{tag}_best.pt'))

    # export
    from export_torchvision import export_onnx
    export_onnx(model, a.out, pre['crop'], cfg['opset'])
    set_fairprune_metadata(a.out, pre, cfg['kind'])

    # evaluation on the sharp-dumped tensors, torch eval mode (the exported computation)
    logits = predict(model, x_eval)
    pred = logits.argmax(1)
    te = idx['test']
    mt = metrics(y_all[te], pred[te])
    per_group = {}
    for g in ('light', 'dark', 'unknown'):
        sel = te[group[te] == g]
        per_group[g] = {'count': int(len(sel)),
                        'accuracy': float((pred[sel] == y_all[sel]).mean()) if len(sel) else None}
    mval = metrics(y_all[idx['val']], pred[idx['val']])
    mtr = metrics(y_all[idx['train']], pred[idx['train']])
    n_par = sum(p.numel() for p in model.parameters())
    rel = os.path.relpath(a.out, ROOT)
    cmd = f'/usr/bin/python3 models/train.py --model {a.model} --out {rel}' + \
        ''.join(f' --{k} {getattr(a, k)}' for k in ('epochs', 'lr', 'batch') if getattr(a, k) is not None) + \
        (f' --seed {a.seed}' if a.seed else '') + (f' --max-minutes {a.max_minutes}' if a.max_minutes else '') + \
        (f' --split-csv {os.path.relpath(a.split_csv, ROOT)}' if a.split_csv else '') + (f' --tag {a.tag}' if a.tag else '')
    card = {
        'model': rel,
        'kind': cfg['kind'],
        'architecture': ('torchvision vgg11 topology, width 1/4 (convs 16-32-64-64-128-128-128-128), 5 MaxPool, '
                         'Flatten of 128x4x4 into Linear 2048-256-256-6 (ReLU, Dropout 0.5), trained from scratch '
                         'with a BatchNorm after each conv; the BN (eval statistics) is folded into the conv '
                         'weights and biases before export, so the ONNX is the plain vgg11 structure'
                         if a.model == 'vgg' else
                         'timm vit_tiny_patch16_224 layout (ViT-Ti/16: embed 192, depth 12, 3 heads, MLP 768), '
                         'initialised from AugReg in21k->in1k weights (../shared/pretrained/'
                         'vit_tiny_patch16_224_augreg_in21k_ft_in1k.npz), new 6-class head, fine-tuned end to end'),
        'parameters': int(n_par),
        'opset': cfg['opset'],
        'input': {'name': 'input', 'shape': ['batch', 3, pre['crop'], pre['crop']], 'dtype': 'float32'},
        'output': {'name': 'logits', 'shape': ['batch', 6]},
        'classes': CLASSES,
        'preprocess': pre,
        'data': {'dataset': 'PAD-UFES-20 (../shared/datasets/pad-ufes-20, 686 images, CC BY 4.0, Pacheco et al. 2020)',
                 'split_file': os.path.relpath(split_csv, ROOT), 'split_seed': SPLIT_SEED,
                 'split_fractions': ({'train': 0.6, 'val': 0.15, 'test': 0.25} if not a.split_csv else
                                     'see models/train_folds.py (3 folds train, 1 val, 1 test)'),
                 'split_unit': 'patient', 'counts': {s: int(len(v)) for s, v in idx.items()},
                 'train_class_counts': {CLASSES[c]: int(counts[c]) for c in range(6)},
                 'extra_training_data': 'none (ISIC UDA-1 not used)',
                 'tensors': 'preprocessed by the library (src/data/preprocess.ts via models/dump_tensors.mjs)'},
        'training': {'seed': a.seed, 'epochs_planned': cfg['epochs'], 'epochs_run': epochs_run,
                     'best_epoch': best['epoch'], 'selection': 'validation macro F1 (ties: validation accuracy)',
                     'batch': cfg['batch'], 'optimizer': 'AdamW', 'lr': cfg['lr'], 'weight_decay': cfg['wd'],
                     'schedule': f'linear warmup {cfg["warmup"]} epochs, cosine to 0',
                     'loss': f'class-weighted cross-entropy (weights n/(6*count_k)), label smoothing '
                             f'{cfg["label_smoothing"]}',
                     'augmentation': f'random resized crop from the resize-{pre["resize"]} square '
                                     f'(area {cfg["scale"][0]}-{cfg["scale"][1]}, ratio 3/4-4/3) to {pre["crop"]}, '
                                     'horizontal flip, 90-degree rotations, brightness/contrast/saturation +-15%',
                     'wall_time_s': round(train_time, 1), 'threads': a.threads,
                     'machine': f'{platform.machine()} CPU, torch {torch.__version__}',
                     'history': history},
        'reproduce': 'cd <repo> && npx tsc -p tsconfig.json && ' + cmd,
        'metrics': {
            'test': {k: mt[k] for k in ('accuracy', 'macro_f1', 'macro_precision', 'macro_recall', 'per_class_f1',
                                        'confusion')},
            'test_per_group': per_group,
            'val': {'accuracy': mval['accuracy'], 'macro_f1': mval['macro_f1']},
            'train_eval': {'accuracy': mtr['accuracy'], 'macro_f1': mtr['macro_f1']},
            'chance': chance_levels(y_all[idx['train']], y_all[te]),
        },
        'evaluation': 'torch eval mode on the sharp-preprocessed tensors of models/dump_tensors.mjs; '
                      'predicted class = argmax of logits',
        'test_images': [rows[i]['image'] for i in te],
        'test_predictions': [int(pred[i]) for i in te],
    }
    card_path = os.path.splitext(a.out)[0] + '.card.json'
    with open(card_path, 'w') as fh:
        json.dump(card, fh, indent=1)
        fh.write('\n')
    np.save(os.path.join(ROOT, 'models', '.cache', f'{tag}_test_logits.npy'), logits[te])
    print(json.dumps({'test': {k: mt[k] for k in ('accuracy', 'macro_f1')}, 'per_group': per_group,
                      'chance': card['metrics']['chance'], 'train_time_s': round(train_time)}, indent=1))


if __name__ == '__main__':
    main()
