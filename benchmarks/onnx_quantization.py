#!/usr/bin/env python
"""ONNX export, int8 and fp16 variants of a model: Set5 PSNR of each next to PyTorch's, file sizes, speed.

    python benchmarks/onnx_quantization.py -m benchmarks/results/edsr_y_8x32_x2.safetensors [--data ../shared/datasets/Set5]

The model file is a `save_model` .safetensors (e.g. from `train_budget.py --save model.safetensors`).
PSNR/SSIM are on the Y channel with border crop = scale and MATLAB-bicubic LR, as everywhere in srwork.
"""
import argparse, tempfile, time, warnings
from pathlib import Path

import torch

from srwork.inference import export_onnx, load_model, onnx_max_diff, onnx_upscaler, quantize_onnx
from srwork.benchmark import Bicubic, evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('-m', '--model', required=True)
    ap.add_argument('--data', default=str(Path(__file__).resolve().parents[2] / 'shared' / 'datasets' / 'Set5'))
    ap.add_argument('--out', default=None, help='folder for the .onnx files (default: a temporary folder)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    up = load_model(a.model)
    s = up.scale
    out = Path(a.out or tempfile.mkdtemp())
    fp32 = export_onnx(up, out / 'model.onnx')                 # raises if ORT and PyTorch differ by > 1e-4 on two sizes
    variants = {'ONNX fp32': fp32, 'ONNX int8 (dynamic)': quantize_onnx(fp32, out / 'model.int8.onnx', 'int8'),
                'ONNX fp16': quantize_onnx(fp32, out / 'model.fp16.onnx', 'fp16')}
    t = time.perf_counter(); ref = evaluate(up, a.data, s).iloc[-1]; t_ref = time.perf_counter() - t
    bic = evaluate(Bicubic(), a.data, s).iloc[-1]
    print(f"model {a.model} (x{s}); data {a.data}; ONNX vs PyTorch max diff at 37x53: {onnx_max_diff(fp32, up, (37, 53)):.1e}")
    print(f"{'variant':<22} {'PSNR':>8} {'change':>8} {'SSIM':>8} {'size kB':>8} {'eval s':>7}")
    print(f"{'bicubic':<22} {bic.psnr:>8.3f} {bic.psnr - ref.psnr:>+8.3f} {bic.ssim:>8.4f} {'':>8} {'':>7}")
    size = sum(t.numel() * t.element_size() for t in up.model.state_dict().values()) / 1e3
    print(f"{'PyTorch fp32':<22} {ref.psnr:>8.3f} {0:>+8.3f} {ref.ssim:>8.4f} {size:>8.0f} {t_ref:>7.1f}")
    for name, path in variants.items():
        try:
            t = time.perf_counter(); r = evaluate(onnx_upscaler(path), a.data, s).iloc[-1]; dt = time.perf_counter() - t
            print(f"{name:<22} {r.psnr:>8.3f} {r.psnr - ref.psnr:>+8.3f} {r.ssim:>8.4f} {path.stat().st_size / 1e3:>8.0f} {dt:>7.1f}")
        except Exception as e:
            print(f"{name:<22} failed to run: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    print("(PSNR dB / SSIM on the Y channel, border crop = scale, MATLAB-bicubic LR)")


if __name__ == '__main__':
    main()
