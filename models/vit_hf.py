"""A Hugging-Face-style ViT (transformers' ViTModel layout) hand-written in torch, for fixtures.

Separate query/key/value Linear layers, heads split with x.view(B, N, H, dh).permute(0, 2, 1, 3),
scores q k^T / sqrt(dh), softmax, context permuted back and viewed to [B, N, D], then
attention.output.dense; pre-norm blocks (layernorm_before / layernorm_after, eps 1e-12),
intermediate.dense + exact GELU, output.dense; final layernorm; classifier on the CLS token.
"""
import math

import torch
import torch.nn as nn


class ViTSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.num_attention_heads = heads
        self.attention_head_size = hidden // heads
        self.all_head_size = heads * self.attention_head_size
        self.query = nn.Linear(hidden, self.all_head_size)
        self.key = nn.Linear(hidden, self.all_head_size)
        self.value = nn.Linear(hidden, self.all_head_size)

    def transpose_for_scores(self, x):
        B, N, _ = x.shape
        return x.view(B, N, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, x):
        q = self.transpose_for_scores(self.query(x))
        k = self.transpose_for_scores(self.key(x))
        v = self.transpose_for_scores(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        B, N = ctx.shape[0], ctx.shape[1]
        return ctx.view(B, N, self.all_head_size)


class ViTAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.attention = ViTSelfAttention(hidden, heads)
        self.output = nn.Linear(hidden, hidden)  # attention.output.dense in HF

    def forward(self, x):
        return self.output(self.attention(x))


class ViTLayer(nn.Module):
    def __init__(self, hidden, heads, mlp, eps=1e-12):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden, eps=eps)
        self.attention = ViTAttention(hidden, heads)
        self.layernorm_after = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, mlp)
        self.act = nn.GELU()
        self.output = nn.Linear(mlp, hidden)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(self.act(self.intermediate(self.layernorm_after(x))))


class ViTHF(nn.Module):
    def __init__(self, image_size=32, patch_size=8, hidden=32, layers=2, heads=4, mlp=64, num_classes=6):
        super().__init__()
        n = (image_size // patch_size) ** 2
        self.patch_embeddings = nn.Conv2d(3, hidden, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, n + 1, hidden) * 0.02)
        self.layer = nn.ModuleList([ViTLayer(hidden, heads, mlp) for _ in range(layers)])
        self.layernorm = nn.LayerNorm(hidden, eps=1e-12)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, pixel_values):
        x = self.patch_embeddings(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.position_embeddings
        for blk in self.layer:
            x = blk(x)
        return self.classifier(self.layernorm(x)[:, 0, :])
