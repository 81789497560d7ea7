#!/usr/bin/env python
"""Real-ESRGAN's degradation: does it keep up with training? Measured side by side in one run.

On a batch of `--bs` HR patches of `--patch` px (default 16 x 256², Real-ESRGAN's own batch), the seconds of:
the torch batch path (`RealESRGANDegradation` on the whole batch, on `--device`), the per-item path (the crappifier
called on each patch, as DataLoader workers do), and one training step of a published-size RRDBNet (23 blocks,
64 features: RealESRGAN_x4plus's generator) on the batch's LR patches. Prints the ratios.

    python benchmarks/degradation_throughput.py [--bs 16 --patch 256 --scale 4 --device cpu --rounds 3]
"""
import argparse, statistics, time

import numpy as np
import torch

from srwork.core import sample_images, load_image
from srwork.crappify import crappifier_preset
from srwork.degradations import RealESRGANDegradation


def patches(n, size):
    "`n` HR patches of `size` px cut from the offline sample photographs."
    imgs = [load_image(p) for p in sorted(sample_images().glob('*')) if p.suffix in ('.png', '.jpg')]
    imgs = [im for im in imgs if min(im.shape[-2:]) >= size]
    rng, out = np.random.default_rng(0), []
    for i in range(n):
        im = imgs[i % len(imgs)]
        top, left = rng.integers(0, im.shape[-2] - size + 1), rng.integers(0, im.shape[-1] - size + 1)
        out.append(im[:, top:top + size, left:left + size].as_subclass(torch.Tensor))
    return torch.stack(out)


def timed(f, rounds, sync=lambda: None):
    f(); sync()                                   # warm-up
    ts = []
    for _ in range(rounds):
        t = time.perf_counter(); f(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bs', type=int, default=16); ap.add_argument('--patch', type=int, default=256)
    ap.add_argument('--scale', type=int, default=4); ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    hr = patches(a.bs, a.patch).to(dev)
    deg = RealESRGANDegradation(scale=a.scale, seed=0)
    epoch = iter(range(10 ** 6))
    t_batch = timed(lambda: deg(hr, items=range(a.bs), epoch=next(epoch)), a.rounds, sync)
    crap = crappifier_preset('realesrgan', a.scale)
    hr_np = [(p.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8) for p in hr]
    t_item = timed(lambda: [crap(p, item=i, epoch=next(epoch)) for i, p in enumerate(hr_np)], a.rounds)

    from srwork.esrgan import RRDBNet
    net = RRDBNet(3, 3, a.scale, num_feat=64, num_block=23, num_grow_ch=32).to(dev).train()
    opt = torch.optim.Adam(net.parameters(), 2e-4)
    lr = deg(hr, items=range(a.bs))
    def step():
        loss = torch.nn.functional.l1_loss(net(lr), hr)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    t_step = timed(step, max(1, a.rounds - 2), sync)

    print(f"Real-ESRGAN degradation of {a.bs} x {a.patch}² HR patches at x{a.scale} on {dev} ({torch.get_num_threads()} threads), "
          f"median of {a.rounds} rounds:")
    print(f"| path | seconds per batch | ms per patch | vs torch batch path |\n|---|---|---|---|")
    print(f"| torch, whole batch ({dev.type}) | {t_batch:.3f} | {1000 * t_batch / a.bs:.1f} | 1.00 |")
    print(f"| per item (crappifier per patch, cpu) | {t_item:.3f} | {1000 * t_item / a.bs:.1f} | {t_item / t_batch:.2f} |")
    print(f"| RRDBNet 23x64 training step (L1 + Adam) | {t_step:.3f} | {1000 * t_step / a.bs:.1f} | {t_step / t_batch:.2f} |")
    print(f"degradation / training step: {t_batch / t_step:.3f} (torch batch path), {t_item / t_step:.3f} (per item, one process)")


if __name__ == '__main__':
    main()
