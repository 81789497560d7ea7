#!/usr/bin/env python
"""Train a small RRDBNet x4 (ESRGAN's PSNR phase: L1, Adam) for a wall-clock budget and save it as a model file.

    python benchmarks/train_rrdbnet_psnr.py --minutes 14 -o benchmarks/results/rrdbnet_4x32_x4.safetensors

Made for `onnx_quantization.py`: quantisation damage measured on trained weights, not random ones. RRDBNet with 4 blocks,
32 features, growth 16 (0.76 M parameters), HR patches of 128 px, batch 16, time-based warm-up + cosine schedule peaking
at 1e-3, BSD68 cached in memory, data prepared in the training process.
Measured on the 2-core reference machine (2026-12-01), 14 minutes: 699 iterations, validation PSNR 27.06 dB (RGB, BSD68 crops).
"""
import argparse, time, warnings
from pathlib import Path

import torch

from srwork.core import set_seed
from srwork.data import sr_dataloaders
from srwork.esrgan import esrgan_learner
from srwork.models import n_params
from srwork.modelfiles import save_model
from srwork.schedules import fit_budget

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--minutes', type=float, default=14)
    ap.add_argument('--data', default=str(SHARED / 'BSD68'))
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('-o', '--out', required=True, help='model file to write (.safetensors)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    torch.set_num_threads(a.threads); set_seed(0)
    dls = sr_dataloaders(a.data, scale=4, patch_size=128, bs=16, valid_pct=0.1, num_workers=0, cache=100)
    learn = esrgan_learner(dls, 4, 'psnr', num_feat=32, num_block=4, num_grow_ch=16)
    print(f"RRDBNet x4, {n_params(learn.model) / 1e6:.2f} M parameters, {a.minutes:g} min", flush=True)
    t = time.time()
    with learn.no_bar(), learn.no_logging(): tb = fit_budget(learn, a.minutes, 1e-3)
    loss, vloss, psnr, ssim = learn.recorder.values[-1][:4]
    print(f"{tb.iters} iterations in {time.time() - t:.0f} s; validation PSNR {psnr:.2f} dB, SSIM {ssim:.4f}")
    print('wrote', save_model(learn, a.out))


if __name__ == '__main__':
    main()
