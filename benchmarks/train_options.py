#!/usr/bin/env python
"""Training step time with srwork's speed options (channels-last, bf16/fp16 autocast, torch.compile), side by side.

    python benchmarks/train_options.py                    # EDSR-baseline x2 and the cpu recipe's luma EDSR, bs 16
    python benchmarks/train_options.py --iters 30 --models edsr

Each configuration trains the same learner (`sr_learner` + `speed_callbacks`, as `srwork train` builds it) for
`--iters` iterations on the offline sample photos (decoded images cached: the loader costs little) and reports the
median time of the steps after the first `--warmup` ones (compilation and allocator warm-up excluded, and reported
separately as the time of the first steps). Ratios are against plain fp32 in the same run. On a machine with a GPU
the loaders (and so the training) run there.
"""
import argparse, time, warnings

import numpy as np
import torch
from fastai.callback.core import Callback

from srwork.core import set_seed, sample_images, scratch_dir
from srwork.data import sr_dataloaders
from srwork.models import create_model, n_params
from srwork.learner import sr_learner
from srwork.edsr import YL1Loss
from srwork.schedules import fit_iters
from srwork.callbacks import speed_callbacks


class StepTimer(Callback):
    order = 99
    def before_fit(self): self.times = []
    def before_batch(self):
        if self.training: self.t = time.perf_counter()
    def after_step(self):
        if torch.cuda.is_available(): torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t)


CONFIGS = [('fp32', dict()), ('channels-last', dict(channels_last=True)), ('bf16', dict(precision='bf16')),
           ('bf16 + channels-last', dict(precision='bf16', channels_last=True)), ('fp16', dict(precision='fp16')),
           ('compile', dict(compile=True)), ('compile + channels-last', dict(compile=True, channels_last=True))]

MODELS = {'edsr': ('EDSR-baseline x2', 'edsr', 'baseline', None), 'ychannel': ('cpu recipe: luma EDSR 8x32 x2', 'ychannel', 'full', YL1Loss)}


def run(model_key, cfg, a, photos):
    label, arch, size, loss = MODELS[model_key]
    set_seed(0)
    dls = sr_dataloaders(photos, scale=2, patch_size=96, bs=a.bs, valid_pct=0.1, cache=100, num_workers=0,
                         patches_per_epoch=a.bs * a.iters)
    learn = sr_learner(dls, create_model(arch, size, 2), 2, loss_func=loss() if loss else None, metrics=[])
    dev = dls.device.type if dls.device is not None else 'cpu'
    timer = StepTimer()
    cbs = speed_callbacks(**{'channels_last': False, **cfg, 'device': dev}) + [timer]
    with learn.no_bar(), learn.no_logging(): fit_iters(learn, a.iters, 1e-4, cbs=cbs)
    t = np.array(timer.times)
    return float(np.median(t[a.warmup:])), float(t[:a.warmup].sum()), n_params(learn.model)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    ap.add_argument('--iters', type=int, default=16)
    ap.add_argument('--warmup', type=int, default=4)
    ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--configs', nargs='+', default=[c for c, _ in CONFIGS])
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    photos = sample_images(scratch_dir() / 'photos')
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    print(f"device {dev}{f' ({torch.cuda.get_device_name()})' if dev == 'cuda' else ''}, {torch.get_num_threads()} threads, "
          f"bs {a.bs}, HR patch 96, median of {a.iters - a.warmup} steps after {a.warmup} warm-up steps")
    for m in a.models:
        base = None
        print(f"\n{MODELS[m][0]}")
        print(f"{'configuration':<26} {'s/step':>8} {'vs fp32':>8} {'warm-up s':>10}")
        for name, cfg in CONFIGS:
            if name not in a.configs: continue
            try: step, warm, n = run(m, cfg, a, photos)
            except Exception as e:
                print(f"{name:<26} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}"); continue
            base = base or step
            print(f"{name:<26} {step:>8.3f} {base / step:>7.2f}x {warm:>10.1f}", flush=True)


if __name__ == '__main__':
    main()
