#!/usr/bin/env python
"""Short CPU run of the ESRGAN two-phase recipe on BSD68; Set5 PSNR of phase 1, phase 2 and interpolations.

    python benchmarks/esrgan_short_run.py --phase1 8 --phase2 8

A reduced RRDBNet (default 32 features, 4 RRDBs, growth 16) at x4: phase 1 trains with L1 for
`--phase1` minutes, phase 2 starts from it and trains against a VGG-style discriminator with
pixel 1e-2 + perceptual (VGG19 conv5_4 before ReLU) 1 + relativistic GAN 5e-3 for `--phase2` minutes
(time-based warm-up + cosine, `fit_budget`). Offline the VGG19 has random weights (`--pretrained`
needs torchvision's file in torch's cache). Then Set5 x4 (Y channel, border 4) for bicubic, phase
1, phase 2 and the network interpolation sweep. Writes the G/D curves (PNG), the interpolation curve
and a JSON record under benchmarks/results/.
"""
import argparse, json, time, warnings
from pathlib import Path

import torch

from srwork.core import atomic_write_bytes, set_seed
from srwork.data import sr_dataloaders
from srwork.models import n_params
from srwork.upscaler import Upscaler
from srwork.schedules import fit_budget
from srwork.esrgan import esrgan_learner, interpolate, plot_gan
from srwork.benchmark import Bicubic, evaluate

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(SHARED / 'BSD68'))
    ap.add_argument('--eval', default=str(SHARED / 'Set5'))
    ap.add_argument('--phase1', '--stage1', type=float, default=8., help='minutes of PSNR-oriented (L1) training')
    ap.add_argument('--phase2', '--stage2', type=float, default=8., help='minutes of GAN training')
    ap.add_argument('--feat', type=int, default=32)
    ap.add_argument('--blocks', type=int, default=4)
    ap.add_argument('--grow', type=int, default=16)
    ap.add_argument('--patch', type=int, default=64, help='HR patch (the discriminator is built for it)')
    ap.add_argument('--bs', type=int, default=8)
    ap.add_argument('--lr1', type=float, default=2e-3)
    ap.add_argument('--lr2', type=float, default=1e-4)
    ap.add_argument('--ema', type=float, default=0.99, help='EMA decay of the generator in phase 2 (0: off)')
    ap.add_argument('--pretrained', action='store_true', help='ImageNet VGG19 for the perceptual loss')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='benchmarks/results/esrgan_short_run')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    set_seed(a.seed)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(a.data).iterdir())
    items = files * 4                                    # longer epochs: less per-epoch overhead
    dls = sr_dataloaders(items, scale=4, patch_size=a.patch, bs=a.bs, splits=(list(range(len(items))), list(range(4))),
                         valid_size=a.patch, cache=len(files), num_workers=0)
    arch = dict(num_feat=a.feat, num_block=a.blocks, num_grow_ch=a.grow)

    s1 = esrgan_learner(dls, 4, 'psnr', **arch)
    print(f"RRDBNet {a.blocks}x{a.feat} (growth {a.grow}, {n_params(s1.model) / 1e6:.3f} M params), x4, HR patch {a.patch}, bs {a.bs}")
    t0 = time.time()
    with s1.no_bar(), s1.no_logging(): tb1 = fit_budget(s1, a.phase1, a.lr1)
    t1 = time.time() - t0
    print(f"phase 1 (L1): {tb1.iters} iterations in {t1 / 60:.1f} min")

    s2 = esrgan_learner(dls, 4, 'gan', generator=s1, pretrained=a.pretrained, ema=a.ema or None, **arch)
    t0 = time.time()
    with s2.no_bar(), s2.no_logging(): tb2 = fit_budget(s2, a.phase2, a.lr2, warmup=0.)
    t2 = time.time() - t0
    h = s2.gan_trainer.history
    print(f"phase 2 (GAN): {tb2.iters} iterations in {t2 / 60:.1f} min")
    import pandas as pd
    hd = pd.DataFrame(h)
    q = max(1, len(hd) // 5)
    print("G/D during phase 2 (means over fifths of the run):")
    print(hd.groupby(hd.index // q)[['g_loss', 'g_pixel', 'g_percep', 'g_gan', 'd_loss', 'd_real', 'd_fake']].mean().round(4).to_string())
    import matplotlib
    matplotlib.use('Agg')
    plot_gan(s2, smooth=20).savefig(out.with_name(out.name + '_gd.png'), dpi=100)

    bic = evaluate(Bicubic(), a.eval, 4).iloc[-1]
    res = {'bicubic': (bic.psnr, bic.ssim)}
    for alpha in (0., 0.2, 0.4, 0.6, 0.8, 1.):
        r = evaluate(Upscaler(interpolate(s1, s2, alpha), 4), a.eval, 4).iloc[-1]
        res[f'alpha {alpha}'] = (r.psnr, r.ssim)
    print(f"\n{Path(a.eval).name} x4 (Y, border 4):")
    for k, (p, s) in res.items():
        label = {'alpha 0.0': 'phase 1 (alpha 0)', 'alpha 1.0': 'phase 2 (alpha 1)'}.get(k, k)
        print(f"  {label:<20} {p:6.2f} dB  SSIM {s:.4f}")
    import matplotlib.pyplot as plt
    alphas = [float(k.split()[1]) for k in res if k.startswith('alpha')]
    fig = plt.figure(figsize=(4.5, 3.2))
    plt.plot(alphas, [res[f'alpha {x}'][0] for x in alphas], marker='o', label='interpolated RRDBNet')
    plt.axhline(bic.psnr, ls='--', c='grey', label='bicubic')
    plt.xlabel('alpha (0 = phase 1, 1 = phase 2)'); plt.ylabel('Set5 x4 PSNR (dB)'); plt.legend(); fig.tight_layout()
    fig.savefig(out.with_name(out.name + '_interp.png'), dpi=100)
    rec = dict(config=vars(a), phase1=dict(iterations=tb1.iters, seconds=t1), phase2=dict(iterations=tb2.iters, seconds=t2),
               set5={k: dict(psnr=p, ssim=s) for k, (p, s) in res.items()}, gd_history=h[::max(1, len(h) // 300)])
    atomic_write_bytes(out.with_suffix('.json'), json.dumps(rec, indent=1).encode())
    print(f"wrote {out.with_suffix('.json')}, {out.name}_gd.png, {out.name}_interp.png")


if __name__ == '__main__':
    main()
