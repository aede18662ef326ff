#!/bin/sh
# Regenerates every file in fixtures/ (random weights, seed 0) and checks each export against
# onnxruntime-node. Run from the repository root: sh models/make_fixtures.sh
set -e
P=/usr/bin/python3
E=models/export_torchvision.py
$P $E --arch vgg11    --width 0.125 --input 32 --num-classes 6 --opset 14 --out fixtures/vgg11_w8.onnx --verify
$P $E --arch vgg11_bn --width 0.125 --input 32 --num-classes 6 --opset 14 --out fixtures/vgg11_bn_w8.onnx --verify
$P $E --arch vgg_gap  --width 0.125 --input 64 --num-classes 6 --opset 14 --out fixtures/vgg_gap_w8.onnx --verify
$P $E --arch vit_b_16 --input 32 --patch 8 --layers 2 --heads 4 --hidden-dim 32 --mlp-dim 64 --num-classes 6 --opset 14 --out fixtures/vit_b16_tiny_op14.onnx --verify
$P $E --arch vit_b_16 --input 32 --patch 8 --layers 2 --heads 4 --hidden-dim 32 --mlp-dim 64 --num-classes 6 --opset 17 --out fixtures/vit_b16_tiny_op17.onnx --verify
$P $E --arch vit_timm --input 32 --patch 8 --layers 2 --heads 3 --hidden-dim 48 --mlp-dim 192 --num-classes 6 --opset 17 --out fixtures/vit_timm_tiny.onnx --verify
$P $E --arch vit_hf   --input 32 --patch 8 --layers 2 --heads 4 --hidden-dim 32 --mlp-dim 64 --num-classes 6 --opset 14 --out fixtures/vit_hf_tiny.onnx --verify
