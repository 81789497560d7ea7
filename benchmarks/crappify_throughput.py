#!/usr/bin/env python
"""Is the crappifier the bottleneck of training? Measured side by side in one run.

For each crappifier preset: images/s of the crappifier alone (one process), and images/s of the
whole training DataLoader (load + crop + flip + crappify, `num_workers` = cores); then the images/s
of one ResNet-34 U-Net training step on the same batches. A loader/train ratio above 1 means the
model, not the data, sets the pace.

    python benchmarks/crappify_throughput.py [--data ../shared/datasets/BSD68] [--patch 128 --bs 8 --scale 4]
"""
import argparse, os, time, warnings
from pathlib import Path

import numpy as np
import torch

from srwork.core import sample_images, set_seed, load_image
from srwork.crappify import CRAPPIFIER_PRESETS, crappifier_preset
from srwork.data import sr_dataloaders

HERE = Path(__file__).resolve().parent


def crappifier_alone(preset, patches, scale):
    c = crappifier_preset(preset, scale)
    for i, p in enumerate(patches): c(p, item=i)          # warm-up: first calls load fonts, codecs
    n, t = 4 * len(patches), time.perf_counter()
    for i in range(n): c(patches[i % len(patches)], item=1000 + i)
    return n / (time.perf_counter() - t)


def loader_rate(dls, batches):
    "Images/s within one epoch, after the workers have started (fastai restarts them every epoch)."
    rates = []
    for _ in range(batches):
        it = iter(dls.train)
        next(it)                  # workers started, first batch out
        n, t = 0, time.perf_counter()
        for xb, _ in it: n += len(xb)
        rates.append(n / (time.perf_counter() - t))
        if sum(len(dls.train) - 1 for _ in rates) >= batches: break
    return float(np.median(rates))


def unet_train_rate(dls, steps):
    from fastai.vision.all import unet_learner, resnet34, NormType, MSELossFlat
    learn = unet_learner(dls, resnet34, pretrained=False, n_out=3, blur=True, self_attention=True,
                         norm_type=NormType.Weight, y_range=(-3., 3.), loss_func=MSELossFlat())
    learn.model.train()
    opt = torch.optim.Adam(learn.model.parameters(), 1e-4)
    xb, yb = dls.one_batch()

    def step():
        loss = learn.loss_func(learn.model(xb), yb)
        loss.backward(); opt.step(); opt.zero_grad()
    step()
    t = time.perf_counter()
    for _ in range(steps): step()
    return steps * len(xb) / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = HERE.parent.parent / 'shared' / 'datasets' / 'BSD68'
    ap.add_argument('--data', default=str(default) if default.is_dir() else None,
                    help='folder of HR images (default: ../shared/datasets/BSD68, else the sample set)')
    ap.add_argument('--scale', type=int, default=4)
    ap.add_argument('--patch', type=int, default=128)
    ap.add_argument('--bs', type=int, default=8)
    ap.add_argument('--batches', type=int, default=24, help='batches timed per loader (whole epochs, median rate)')
    ap.add_argument('--steps', type=int, default=3, help='U-Net training steps timed')
    ap.add_argument('--workers', type=int, default=len(os.sched_getaffinity(0)))
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    data = Path(a.data) if a.data else sample_images()
    set_seed(0)
    files = sorted(p for p in data.iterdir() if p.suffix.lower() in ('.png', '.jpg', '.jpeg'))
    rng = np.random.RandomState(0)
    patches = []
    for f in files[:16]:
        img = load_image(f).permute(1, 2, 0).numpy()
        t, l = rng.randint(0, img.shape[0] - a.patch + 1), rng.randint(0, img.shape[1] - a.patch + 1)
        patches.append(np.ascontiguousarray(img[t:t + a.patch, l:l + a.patch]))
    print(f"data: {data} ({len(files)} images), x{a.scale}, HR patch {a.patch}, bs {a.bs}, "
          f"{a.workers} workers, torch threads {torch.get_num_threads()}")
    rows = []
    for preset in CRAPPIFIER_PRESETS:
        dls = sr_dataloaders(data, scale=a.scale, patch_size=a.patch, bs=a.bs, crappifier=preset, upsample_input=True,
                             num_workers=a.workers, valid_pct=0.1)
        rows.append((preset, crappifier_alone(preset, patches, a.scale), loader_rate(dls, a.batches)))
    train = unet_train_rate(dls, a.steps)
    print(f"\nResNet-34 U-Net training step (CPU, fp32): {train:.2f} images/s\n")
    print(f"{'preset':<12} {'crappifier alone img/s':>23} {'DataLoader img/s':>17} {'loader / U-Net train':>21}")
    for preset, alone, loader in rows:
        print(f"{preset:<12} {alone:>23.1f} {loader:>17.1f} {loader / train:>20.1f}x")


if __name__ == '__main__':
    main()
