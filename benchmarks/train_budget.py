#!/usr/bin/env python
"""Train an SR model for a fixed wall-clock budget with srwork's `cpu` recipe, then evaluate it on Set5/Set14 against bicubic.

    python benchmarks/train_budget.py --minutes 30 --scale 2
    python benchmarks/train_budget.py --minutes 4 --lr 1e-3         # any flag of `srwork train` after the known ones

A thin call of the public API: exactly `srwork train --arch edsr --recipe cpu --minutes M --eval-sets Set5 Set14`
(`train_and_evaluate`). The recipe (chosen here for quality per CPU-minute on a 2-core machine): EDSR 12 blocks x 32
features on the luma channel with a bicubic skip (`YChannel` size deep, chroma bicubic, L1 on Y), LR patches of 48,
batch 16, Adam (0.9, 0.99), peak lr 2e-3 with a time-based 2 % warm-up and cosine, bf16 autocast where the CPU computes
bf16 natively (fp32 otherwise), an EMA of the weights (0.999, warmed up), channels-last, decoded images cached as uint8,
data prepared in the training process, epochs of 200 iterations; 3 % of the images held out for validation (2 of BSD68).

Prints PSNR/SSIM (Y channel, border crop = scale, MATLAB-bicubic LR) and the iterations done, and writes a JSON record.
"""
import argparse, json, sys, time
from pathlib import Path

import torch

from srwork.core import atomic_write_bytes
from srwork.commands import train_and_evaluate

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(SHARED / 'BSD68'), help='folder of HR training images (default: ../shared/datasets/BSD68)')
    ap.add_argument('--eval', nargs='+', default=[str(SHARED / 'Set5'), str(SHARED / 'Set14')], help='HR benchmark folders')
    ap.add_argument('--minutes', type=float, default=30.)
    ap.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's, as srwork train)")
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--run', default='benchmarks/results/train_budget_run', help='run folder (replaced)')
    ap.add_argument('--out', default='benchmarks/results/train_budget.json')
    a, extra = ap.parse_known_args()
    if a.threads: torch.set_num_threads(a.threads)
    overrides = {}
    for k, v in zip(extra[::2], extra[1::2]):        # e.g. --lr 1e-3 --bs 8 --preset course-v3: passed to train
        for typ in (int, float, str):
            try: overrides[k.lstrip('-').replace('-', '_')] = typ(v); break
            except ValueError: pass
    print(f"srwork train --arch edsr --recipe cpu --minutes {a.minutes:g} --scale {a.scale} on {a.data}, "
          f"{torch.get_num_threads()} threads{f', {overrides}' if overrides else ''}", flush=True)
    t0 = time.time()
    run = train_and_evaluate('edsr', a.data, a.run, recipe='cpu', minutes=a.minutes, scale=a.scale, seed=a.seed,
                             eval_sets=a.eval, overwrite=True, **overrides)
    secs = time.time() - t0
    learn = run['learn']
    iters = len(learn.recorder.losses)             # the budgeted fit is one fit: one loss per iteration
    print(f"\n{iters} iterations in {a.minutes:g} min ({iters / (a.minutes * 60):.2f} it/s); whole run {secs / 60:.1f} min")
    record = dict(config=dict(vars(a), **overrides), threads=torch.get_num_threads(), iterations=iters, seconds=secs,
                  results=run['benchmarks'].to_dict(orient='index'))
    atomic_write_bytes(a.out, json.dumps(record, indent=1).encode())
    print(f"wrote {a.out}")


if __name__ == '__main__':
    sys.exit(main())
