#!/usr/bin/env python
"""Train an SR learner for a fixed wall-clock budget, then evaluate it on Set5/Set14 against bicubic.

    python benchmarks/train_budget.py --minutes 30 --scale 2          # the default recipe
    python benchmarks/train_budget.py --arch srresnet --minutes 10 --channels rgb

The default recipe is tuned for quality per CPU-minute on a small machine (2 cores):
EDSR 8 blocks x 32 features predicting the residual over bicubic (`upsample_skip`), on the luma
channel (`YChannel`, chroma bicubic, loss on Y), channels-last memory format, LR patches of 48 px,
batch 16, Adam (0.9, 0.99) with a time-based warm-up + cosine schedule peaking at 2e-3, training
pairs made with the benchmark's own MATLAB-bicubic degradation, decoded images cached in memory and
the data prepared in the training process (no worker processes competing for the two cores).

Prints PSNR/SSIM (Y channel, border crop = scale, MATLAB-bicubic LR) and the iterations done, and
writes everything to a JSON file.

Measured on the 2-core reference machine (2026-11-22), `--minutes 30 --scale 2`, BSD68 (68 images):
4332 iterations (2.41 it/s); Set5 37.49 dB / SSIM 0.9588 (bicubic 33.68 / 0.9305; SRCNN's published
36.66 dB); Set14 32.91 dB / 0.9120 (bicubic 30.24 / 0.8692). Shorter budgets: 1 min 35.14 dB,
4 min 36.71 dB on Set5 (4 min at peak lr 1e-3: 36.55 dB).
"""
import argparse, json, os, time, warnings
from pathlib import Path

import torch

from srwork.core import SRWorkError, atomic_write_bytes, set_seed
from srwork.data import sr_dataloaders
from srwork.edsr import EDSR, MSRResNet, YChannel, YL1Loss
from srwork.models import sr_learner, n_params, save_model
from srwork.training import fit_budget
from srwork.benchmark import Bicubic, evaluate

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def channels_last_cb():
    from fastai.callback.core import Callback

    class _ChannelsLast(Callback):
        "Feed batches in channels-last memory format (oneDNN's fast path for convolutions on CPU)."
        order = 5
        def before_fit(self): self.learn.model.to(memory_format=torch.channels_last)
        def before_batch(self): self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) for x in self.xb)
    return _ChannelsLast()


def build_model(a):
    ch = 1 if a.channels == 'y' else 3
    if a.arch == 'edsr':
        net = EDSR(ch, ch, a.feat, a.blocks, a.scale, res_scale=a.res_scale, upsample_skip=not a.no_skip,
                   **({'rgb_mean': (0.44,)} if ch == 1 else {}))
    elif a.arch == 'srresnet':
        net = MSRResNet(ch, ch, a.feat, a.blocks, a.scale)
    else: raise SRWorkError(f"unknown arch {a.arch!r}")
    return YChannel(net, a.scale) if ch == 1 else net


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(SHARED / 'BSD68'), help='folder of HR training images (default: ../shared/datasets/BSD68)')
    ap.add_argument('--eval', nargs='+', default=[str(SHARED / 'Set5'), str(SHARED / 'Set14')], help='HR test folders')
    ap.add_argument('--minutes', type=float, default=30.)
    ap.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    ap.add_argument('--arch', default='edsr', choices=['edsr', 'srresnet'])
    ap.add_argument('--feat', type=int, default=32)
    ap.add_argument('--blocks', type=int, default=8)
    ap.add_argument('--res-scale', type=float, default=1.)
    ap.add_argument('--patch', type=int, default=48, help='LR patch size (HR patch = patch x scale)')
    ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--lr', type=float, default=2e-3, help='peak learning rate')
    ap.add_argument('--warmup', type=float, default=0.02, help='fraction of the budget spent warming up')
    ap.add_argument('--channels', default='y', choices=['y', 'rgb'], help="train on luma ('y', chroma bicubic) or RGB")
    ap.add_argument('--no-skip', action='store_true', help='no bicubic skip connection (plain EDSR)')
    ap.add_argument('--no-channels-last', action='store_true')
    ap.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='benchmarks/results/train_budget.json')
    ap.add_argument('--save', default=None, help='also save the trained model here (.safetensors via save_model, else a state dict)')
    a = ap.parse_args()
    warnings.simplefilter('ignore')
    torch.set_num_threads(a.threads)
    set_seed(a.seed)

    files = sorted(p for p in Path(a.data).iterdir() if p.suffix.lower() in ('.png', '.jpg', '.jpeg', '.bmp', '.tif'))
    if not files: raise SystemExit(f"{a.data}: no training images")
    repeat = max(1, (200 * a.bs) // len(files))           # epochs of about 200 iterations: less per-epoch overhead
    items = files * repeat
    dls = sr_dataloaders(items, scale=a.scale, patch_size=a.patch * a.scale, bs=a.bs, crappifier='bicubic',
                         splits=(list(range(len(items))), []), cache=len(files), num_workers=0)
    model = build_model(a)
    learn = sr_learner(dls, model, a.scale, loss_func=YL1Loss() if a.channels == 'y' else None, metrics=[])
    cbs = [] if a.no_channels_last else [channels_last_cb()]
    print(f"{a.arch} {a.blocks}x{a.feat} ({n_params(model) / 1e6:.3f} M params), x{a.scale}, {a.channels}, "
          f"skip={not a.no_skip}, LR patch {a.patch}, bs {a.bs}, lr {a.lr:g}, {a.threads} threads, "
          f"{len(files)} training images, budget {a.minutes:g} min")
    t0 = time.time()
    with learn.no_bar(), learn.no_logging():
        tb = fit_budget(learn, a.minutes, a.lr, a.warmup, cbs=cbs)
    train_s = time.time() - t0
    losses = [float(l) for l in learn.recorder.losses]
    print(f"trained {tb.iters} iterations in {train_s / 60:.1f} min ({tb.iters / train_s:.2f} it/s), "
          f"final smoothed loss {losses[-1]:.5f}")
    learn.model.to(memory_format=torch.contiguous_format)

    results = {}
    print(f"\n{'set':<8} {'bicubic PSNR':>12} {'model PSNR':>11} {'gain':>6} {'bicubic SSIM':>13} {'model SSIM':>11}")
    for folder in a.eval:
        m, b = evaluate(learn, folder, a.scale).iloc[-1], evaluate(Bicubic(), folder, a.scale).iloc[-1]
        name = Path(folder).name
        results[name] = dict(psnr=m.psnr, ssim=m.ssim, bicubic_psnr=b.psnr, bicubic_ssim=b.ssim)
        print(f"{name:<8} {b.psnr:>12.2f} {m.psnr:>11.2f} {m.psnr - b.psnr:>+6.2f} {b.ssim:>13.4f} {m.ssim:>11.4f}")
    print("(PSNR dB / SSIM on the Y channel, border crop = scale, LR by MATLAB-compatible bicubic)")
    record = dict(config=vars(a), params=n_params(model), iterations=tb.iters, train_seconds=train_s,
                  results=results, loss_curve=losses[::max(1, len(losses) // 200)])
    atomic_write_bytes(a.out, json.dumps(record, indent=1).encode())
    if a.save:
        if a.save.endswith('.safetensors'):
            save_model(learn.model, a.save, scale=a.scale)
        else: torch.save(learn.model.state_dict(), a.save)
    print(f"wrote {a.out}")


if __name__ == '__main__':
    main()
