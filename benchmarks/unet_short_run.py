#!/usr/bin/env python
"""Short CPU run of the ResNet-34 U-Net + FeatureLoss on BSD68, evaluated on Set5 against bicubic.

    python benchmarks/unet_short_run.py --minutes 15 --scale 2

Offline, the encoder and the loss VGG start from random weights (`--pretrained` needs the ImageNet
files in torch's cache). Training pairs use the benchmark's own degradation (MATLAB bicubic), so
the Set5 numbers are comparable with bicubic. A time-based warm-up + cosine schedule (`fit_budget`)
spends exactly the budget. Writes the per-epoch curve (train loss, valid loss, valid PSNR) as CSV
and PNG and the results as JSON under benchmarks/results/.
"""
import argparse, json, os, time, warnings
from pathlib import Path

import torch

from srwork.core import atomic_write_bytes, set_seed
from srwork.data import sr_dataloaders
from srwork.models import n_params
from srwork.schedules import fit_budget
from srwork.benchmark import Bicubic, evaluate
from srwork.unet import sr_unet_learner

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(SHARED / 'BSD68'))
    ap.add_argument('--eval', default=str(SHARED / 'Set5'))
    ap.add_argument('--minutes', type=float, default=15.)
    ap.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    ap.add_argument('--arch', default='resnet34')
    ap.add_argument('--patch', type=int, default=64, help='HR patch size (the U-Net works at output size)')
    ap.add_argument('--bs', type=int, default=8)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--loss', default='feature', choices=['feature', 'l1'])
    ap.add_argument('--pretrained', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='benchmarks/results/unet_short_run')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    set_seed(a.seed)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)

    dls = sr_dataloaders(a.data, scale=a.scale, patch_size=a.patch, bs=a.bs, crappifier='bicubic', upsample_input=True,
                         normalize=True, valid_pct=0.1, valid_size=96, cache=100, num_workers=0)
    from fastai.losses import L1LossFlat
    learn = sr_unet_learner(dls, a.arch, pretrained=a.pretrained, loss_func=L1LossFlat() if a.loss == 'l1' else None)
    print(f"U-Net {a.arch} ({n_params(learn.model) / 1e6:.1f} M params), x{a.scale}, {a.loss} loss, pretrained={a.pretrained}, "
          f"HR patch {a.patch}, bs {a.bs}, lr {a.lr:g}, {len(dls.train_ds)} train / {len(dls.valid_ds)} valid images, {a.minutes:g} min")
    t0 = time.time()
    with learn.no_bar():
        tb = fit_budget(learn, a.minutes, a.lr)
    secs = time.time() - t0
    names = learn.recorder.metric_names[1:-1]
    rows = [dict(zip(names, [float(v) if v is not None else None for v in vals])) for vals in learn.recorder.values]
    print(f"trained {tb.iters} iterations in {secs / 60:.1f} min ({tb.iters / secs:.2f} it/s), {len(rows)} epochs")

    m, b = evaluate(learn, a.eval, a.scale).iloc[-1], evaluate(Bicubic(), a.eval, a.scale).iloc[-1]
    print(f"{Path(a.eval).name} x{a.scale}: U-Net {m.psnr:.2f} dB / {m.ssim:.4f}, bicubic {b.psnr:.2f} dB / {b.ssim:.4f} "
          f"(Y channel, border {a.scale})")

    import pandas as pd, matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    df = pd.DataFrame(rows); df.index.name = 'epoch'
    df.to_csv(out.with_suffix('.csv'))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(df.index, df['train_loss'], label='train'); ax1.plot(df.index, df['valid_loss'], label='valid')
    ax1.set_xlabel('epoch'); ax1.set_ylabel(f'{a.loss} loss'); ax1.legend()
    ax2.plot(df.index, df['psnr'], label='U-Net (valid crops)'); ax2.axhline(b.psnr, ls='--', c='grey', label=f'bicubic Set5 {b.psnr:.2f}')
    ax2.axhline(m.psnr, ls=':', c='C1', label=f'U-Net Set5 {m.psnr:.2f}')
    ax2.set_xlabel('epoch'); ax2.set_ylabel('PSNR (dB, Y)'); ax2.legend()
    fig.tight_layout(); fig.savefig(out.with_suffix('.png'), dpi=100)
    rec = dict(config=vars(a), iterations=tb.iters, seconds=secs, set5=dict(psnr=m.psnr, ssim=m.ssim),
               bicubic=dict(psnr=b.psnr, ssim=b.ssim), curve=rows)
    atomic_write_bytes(out.with_suffix('.json'), json.dumps(rec, indent=1).encode())
    print(df.iloc[::max(1, len(df) // 10)].round(4).to_string())
    print(f"wrote {out.with_suffix('.csv')}, .png, .json")


if __name__ == '__main__':
    main()
