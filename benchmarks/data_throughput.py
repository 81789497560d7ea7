#!/usr/bin/env python
"""Patches per second of the training loader on DIV2K-size images, against the model step rates it has to feed.

    python benchmarks/data_throughput.py                 # 8 images of 2040x1356, HR patches 96 (x2) and 192 (x4)
    python benchmarks/data_throughput.py --workers 4 --batches 40

Makes 2040x1356 PNGs (DIV2K's size) from the BSD68 photos (or the offline sample photos), then times one epoch of
`sr_dataloaders(...).train` (batch 16, bicubic degradation, random patch, flips/rotations) for each way of reading
the images, with 0 and N loader processes:

- decode per patch (`prepare=False`): every patch decodes its whole PNG, which is what srwork's loaders did by default
  before they prepared large images themselves;
- default: `sr_dataloaders` on the PNG folder as it is, which prepares the arrays below once (under the data root)
  and reads them from then on;
- prepared arrays: `prepare_images` (`srwork prepare`) wrote uncompressed uint8 `.npy` files once; the loader memory-maps them,
  so a patch reads only its rows, and worker processes share the page cache;
- uint8 cache: images decoded once per process and kept in memory (small datasets; with N workers, once per worker).

CPU milliseconds per patch are the process's CPU time plus its (joined) workers', divided by the patches delivered.
Then one training step (forward, backward, Adam) of EDSR-baseline x2 (LR 48, HR 96) and RRDBNet x4 (23 blocks, LR 48,
HR 192) at batch 16 on this machine, as patches per second: the loader must beat those rates for the model never to
wait. All figures come from this one run, side by side.
"""
import argparse, os, resource, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srwork.core import set_seed, sample_images
from srwork.data import sr_dataloaders, prepare_images, read_pixels, find_images, auto_prepare
from srwork.models import create_model, n_params
import srwork.edsr, srwork.esrgan                      # registers the architectures

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def make_images(dest: Path, n: int) -> list:
    src = SHARED / 'BSD68'
    photos = find_images(src) if src.is_dir() else find_images(sample_images(dest / 'samples'))
    out = []
    for i in range(n):
        im = Image.open(photos[i % len(photos)]).convert('RGB')
        if im.width < im.height: im = im.transpose(Image.Transpose.ROTATE_90)
        p = dest / 'png' / f'{i:04d}.png'
        p.parent.mkdir(parents=True, exist_ok=True)
        im.resize((2040, 1356), Image.Resampling.BICUBIC).save(p)
        out.append(p)
    return out


def time_loader(folder, scale, patch, bs, batches, workers, cache, prepare):
    set_seed(0)
    dls = sr_dataloaders(folder, scale=scale, patch_size=patch, bs=bs, valid_pct=0.01, num_workers=workers,
                         cache=cache, patches_per_epoch=bs * batches, device='cpu', prepare=prepare)
    c0, t0 = cpu_seconds(), time.perf_counter()
    n = 0
    for xb, yb in dls.train: n += len(yb)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    del dls
    return n / wall, cpu / n * 1000


def step_rate(arch, size, scale, lr_patch, bs, steps):
    set_seed(0)
    model = create_model(arch, size, scale).train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x, y = torch.rand(bs, 3, lr_patch, lr_patch), torch.rand(bs, 3, lr_patch * scale, lr_patch * scale)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss = torch.nn.functional.l1_loss(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        if i: times.append(time.perf_counter() - t)      # the first step warms up (allocations, oneDNN kernels)
    return bs / float(np.median(times)), n_params(model)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--images', type=int, default=8)
    ap.add_argument('--workers', type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument('--batches', type=int, default=20, help='batches timed per configuration (decode per patch: a quarter)')
    ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--steps', type=int, default=2, help='model steps timed (after one warm-up step)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pngs = make_images(tmp, a.images)
        t = time.perf_counter()
        for p in pngs: read_pixels(p)
        decode_ms = (time.perf_counter() - t) / len(pngs) * 1000
        t = time.perf_counter()
        res = prepare_images(tmp / 'png', tmp / 'npy', quiet=True)
        prep_s = time.perf_counter() - t
        os.environ['SRWORK_DATA'] = str(tmp / 'data_root')          # the default loader's arrays: written once, by the first loader below
        t = time.perf_counter()
        auto_prepare(find_images(tmp / 'png'), quiet=True)
        auto_s = time.perf_counter() - t
        png_mb = sum(p.stat().st_size for p in pngs) / 1e6
        print(f"{a.images} PNGs of 2040x1356 ({png_mb / a.images:.1f} MB each): decoding one costs {decode_ms:.0f} ms; "
              f"prepare_images wrote {res['bytes'] / 1e6 / a.images:.1f} MB per image in {prep_s:.1f} s (the default loader's own "
              f"preparation, the first time it sees the folder: {auto_s:.1f} s); "
              f"{torch.get_num_threads()} torch threads, {len(os.sched_getaffinity(0))} cores")

        rates = {}
        for name, arch, size, scale, lr_patch in (('EDSR-baseline x2', 'edsr', 'baseline', 2, 48),
                                                  ('RRDBNet x4 (23 blocks)', 'esrgan', 'full', 4, 48)):
            r, n = step_rate(arch, size, scale, lr_patch, a.bs, a.steps)
            rates[(name, lr_patch * scale)] = r
            print(f"model step, {name} ({n / 1e6:.2f} M params), bs {a.bs}, HR {lr_patch * scale}: {a.bs / r:.2f} s/step = {r:.1f} patches/s")

        print(f"\n{'HR patch':>8} {'source':<34} {'workers':>7} {'patches/s':>10} {'CPU ms/patch':>13} {'vs decode':>10} {'/ model':>8}")
        for (model, patch), model_rate in rates.items():
            scale = 2 if patch == 96 else 4
            base = None
            for label, folder, cache, frac, prep in (('decode per patch (prepare=False)', tmp / 'png', 0, 4, False),
                                                     ('default: the PNG folder (auto-prepared)', tmp / 'png', 0, 1, 'auto'),
                                                     ('prepared arrays, mmap (srwork prepare)', tmp / 'npy', 0, 1, 'auto'),
                                                     ('uint8 cache per process', tmp / 'png', a.images, 1, 'auto')):
                for w in (0, a.workers):
                    rate, ms = time_loader(folder, scale, patch, a.bs, max(2, a.batches // frac), w, cache, prep)
                    if base is None: base = ms
                    print(f"{patch:>8} {label:<34} {w:>7} {rate:>10.1f} {ms:>13.2f} {base / ms:>9.1f}x {rate / model_rate:>7.1f}x")
            print(f"{'':>8} (/ model: loader patches/s over {model}'s {model_rate:.1f} patches/s on this machine)")


if __name__ == '__main__':
    main()
