"""timm-layout Vision Transformer in plain torch (timm is not available here).

Module names equal timm's `vit_tiny_patch16_224` state_dict keys, so the AugReg weights in
../shared/pretrained/vit_tiny_patch16_224_augreg_in21k_ft_in1k.npz load 1:1:
patch_embed.proj (Conv2d 3->D, kernel=stride=patch), cls_token, pos_embed [1,1+N,D],
blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head.
Pre-norm blocks, LayerNorm eps 1e-6, fused qkv Linear reshaped to [B,N,3,H,dh] and permuted
to [3,B,H,N,dh], softmax(q k^T * dh^-0.5), exact (erf) GELU, class-token pooling.

  /usr/bin/python3 models/vit_timm.py --check      # load the pretrained weights, sanity checks
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)  # a module so forward hooks can see the probabilities

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.softmax(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D]


class VisionTransformerTimm(nn.Module):
    def __init__(self, img_size=224, patch_size=16, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0,
                 num_classes=1000, eps=1e-6):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, embed_dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=eps)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])


def load_timm_npz(model, path):
    """Load a timm state_dict stored as .npz (no pickle). Checks names and shapes strictly."""
    z = np.load(path)
    sd = model.state_dict()
    missing = [k for k in sd if k not in z.files]
    extra = [k for k in z.files if k not in sd]
    bad = [(k, tuple(z[k].shape), tuple(sd[k].shape)) for k in sd if k in z.files and tuple(z[k].shape) != tuple(sd[k].shape)]
    if missing or extra or bad:
        raise ValueError(f'npz does not match the model: missing {missing[:5]}, extra {extra[:5]}, shape {bad[:5]}')
    model.load_state_dict({k: torch.from_numpy(np.array(z[k], dtype=np.float32)) for k in sd})
    return model


def vit_tiny_pretrained():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import PRETRAINED_VIT
    m = VisionTransformerTimm()
    load_timm_npz(m, PRETRAINED_VIT)
    return m.eval()


def _check():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import PAD_DIR, dump_tensors, read_pad_split
    torch.set_num_threads(2)
    m = vit_tiny_pretrained()
    n = sum(p.numel() for p in m.parameters())
    print(f'parameters: {n:,} (expected 5,717,416): {"OK" if n == 5717416 else "MISMATCH"}')
    pre = {'resize': 248, 'crop': 224, 'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'interpolation': 'bicubic'}
    rows = read_pad_split()[:4]
    paths = [os.path.join(PAD_DIR, r['image']) for r in rows]
    extra = [p for p in sys.argv[2:] if os.path.exists(p)]
    x = dump_tensors(paths + extra, pre, 'vit_check')
    with torch.no_grad():
        a = m(torch.from_numpy(x))
        b = m(torch.from_numpy(x))
    print('finite:', bool(torch.isfinite(a).all()), 'deterministic:', bool(torch.equal(a, b)),
          'logit range:', float(a.min()), float(a.max()))
    p = a.softmax(-1)
    top = p.topk(5, dim=-1)
    for i, f in enumerate(paths + extra):
        print(os.path.basename(f), 'top5 ImageNet idx', top.indices[i].tolist(),
              'p', [round(v, 3) for v in top.values[i].tolist()])


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true')
    ap.add_argument('images', nargs='*')
    a = ap.parse_args()
    if a.check:
        _check()
