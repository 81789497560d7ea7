#!/usr/bin/env python
"""ONNX fp32, fp16, dynamic int8 and static int8 (QDQ) of srwork models: Set5 PSNR change and CPU latency, side by side.

    python benchmarks/onnx_quantization.py -m benchmarks/results/edsr_y_8x32_x2.safetensors [--rrdbnet] [--data ../shared/datasets/Set5]

`-m` takes model files (`save_model` .safetensors, e.g. from `train_budget.py --save`, or published .pth), repeatable;
`--rrdbnet` adds an x4plus-size RRDBNet (23 blocks, seeded random weights: its PSNR is not a result, its change is
the quantisation's damage). Every variant of a model runs in onnxruntime on the CPU with the same number of threads
as PyTorch; latency is the median of `--reps` runs on one `--size` px LR input. Static int8 is calibrated on the
offline sample photographs, never on the test set. PSNR/SSIM on the Y channel, border crop = scale, MATLAB-bicubic LR.
Target (issue 16): static int8 within 0.1 dB of fp32 and faster than fp32.

Measured on the 2-core reference machine (2026-12-01), `-m benchmarks/results/edsr_y_8x32_x2.safetensors
-m benchmarks/results/rrdbnet_4x32_x4.safetensors` (the RRDBNet from `train_rrdbnet_psnr.py --minutes 14`):
EDSR-Y x2 37.363 dB, static int8 -0.058 dB at 0.60x fp32; RRDBNet x4 29.191 dB, static int8 -0.047 dB at 0.66x.
"""
import argparse, os, statistics, time, warnings
from pathlib import Path

import numpy as np
import torch

from srwork.benchmark import Bicubic, evaluate
from srwork.core import scratch_dir
from srwork.inference import export_onnx, load_model, onnx_max_diff, onnx_session, onnx_upscaler, quantize_onnx
from srwork.upscaler import Upscaler


def latency(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(name, up, a, out):
    s = up.scale
    fp32 = export_onnx(up, out/f'{name}.onnx')
    variants = {'ONNX fp32': fp32, 'ONNX fp16': quantize_onnx(fp32, out/f'{name}.fp16.onnx', 'fp16'),
                'ONNX int8 dynamic': quantize_onnx(fp32, out/f'{name}.int8-dynamic.onnx', 'int8-dynamic'),
                'ONNX int8 static QDQ': quantize_onnx(fp32, out/f'{name}.int8.onnx', 'int8')}
    x = torch.rand(1, 3, a.size, a.size)
    with torch.no_grad():
        ref = evaluate(up, a.data, s).iloc[-1]
        t_ref = latency(lambda: up(x), a.reps)
    bic = evaluate(Bicubic(), a.data, s).iloc[-1]
    print(f"\n{name} (x{s}); {a.data}; ONNX fp32 vs PyTorch max diff {onnx_max_diff(fp32, up, (37, 53)):.1e}; "
          f"latency on a {a.size}x{a.size} input, {a.threads} threads")
    print(f"{'variant':<22} {'PSNR':>8} {'change':>8} {'SSIM':>8} {'size MB':>8} {'latency s':>10} {'vs fp32':>8}")
    print(f"{'bicubic':<22} {bic.psnr:>8.3f} {bic.psnr - ref.psnr:>+8.3f} {bic.ssim:>8.4f}")
    size = sum(t.numel() * t.element_size() for t in up.model.state_dict().values()) / 1e6
    print(f"{'PyTorch fp32':<22} {ref.psnr:>8.3f} {0:>+8.3f} {ref.ssim:>8.4f} {size:>8.2f} {t_ref:>10.3f}")
    rows, t32 = {}, None
    for vname, path in variants.items():
        sess = onnx_session(path, a.threads)
        t = latency(lambda: sess.run(None, {'lr': x.numpy()}), a.reps)
        t32 = t32 or t
        r = evaluate(onnx_upscaler(path, a.threads), a.data, s).iloc[-1]
        rows[vname] = (r.psnr - ref.psnr, t / t32)
        print(f"{vname:<22} {r.psnr:>8.3f} {r.psnr - ref.psnr:>+8.3f} {r.ssim:>8.4f} {path.stat().st_size / 1e6:>8.2f} {t:>10.3f} {t / t32:>8.2f}")
    loss, speed = rows['ONNX int8 static QDQ']
    print(f"  [{'ok' if loss >= -0.1 and speed < 1 else 'MISSED'}] static int8: {loss:+.3f} dB (>= -0.1), {speed:.2f}x the fp32 latency (< 1)")
    return loss >= -0.1 and speed < 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('-m', '--model', action='append', default=[])
    ap.add_argument('--rrdbnet', action='store_true', help='add an x4plus-size RRDBNet with seeded random weights')
    ap.add_argument('--data', default=str(Path(__file__).resolve().parents[2]/'shared'/'datasets'/'Set5'))
    ap.add_argument('--size', type=int, default=128, help='LR side of the latency input')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument('--out', default=None, help='folder for the .onnx files (default: a temporary folder, removed at exit)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    torch.set_num_threads(a.threads)
    out = Path(a.out) if a.out else scratch_dir('srwork-onnx-')      # (a scratch folder is removed at exit)
    out.mkdir(parents=True, exist_ok=True)
    models = {Path(m).stem: load_model(m) for m in a.model}
    if a.rrdbnet:
        from srwork.esrgan import RRDBNet
        torch.manual_seed(0)
        models['rrdbnet_x4plus_random'] = Upscaler.from_any(RRDBNet(scale=4, num_feat=64, num_block=23, num_grow_ch=32))
    if not models: ap.error('give -m MODEL and/or --rrdbnet')
    ok = [run(name, up.eval(), a, out) for name, up in models.items()]
    raise SystemExit(0 if all(ok) else 1)


if __name__ == '__main__':
    main()
