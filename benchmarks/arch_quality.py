#!/usr/bin/env python
"""Quality per CPU-minute of today's architectures: each one's `small` size trained for the same minutes with the `cpu`
recipe's settings on the same data and threads, one after the other in one run, then evaluated on Set5/Set14.

    python benchmarks/arch_quality.py --minutes 5                    # edsr span compact realplksr safmn, x2, BSD68
    python benchmarks/arch_quality.py --archs span safmn --minutes 2 --scale 4

The `cpu` recipe's settings (`srwork train --recipe cpu`, benchmarks/train_budget.py) for every architecture: LR patches
of 48 (HR 96 at x2), batch 16, Adam (0.9, 0.99) with a time-based 2 % warm-up and cosine, bf16 autocast where the CPU
computes bf16 natively (fp32 otherwise), an EMA of the weights (0.999), channels-last, decoded images cached as uint8,
epochs of 200 iterations, 3 % of the images held out. The peak learning rate is each architecture's own (its
registration: the paper's or traiNNer-redux's), not the EDSR-Y recipe's 2e-3. The cpu recipe's own model (EDSR-Y 12x32,
`--recipe cpu`) runs too, as the reference srwork recommends for a CPU.

Prints one row per architecture (parameters, iterations done, PSNR/SSIM on Y against bicubic) and writes a JSON record.
"""
import argparse, json, sys, time
from pathlib import Path

import torch

from srwork.core import atomic_write_bytes
from srwork.callbacks import native_bf16
from srwork.config import TrainConfig, PhasePlan
from srwork.commands import train_and_evaluate
from srwork.models import n_params

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'datasets'
CPU_SETTINGS = dict(channels_last=True, cache=True, workers=0, patches_per_epoch=200 * 16, valid_pct=0.03, ema=0.999,
                    betas=(0.9, 0.99), bs=16)


def run_one(arch, a, recipe_cpu=False):
    "Train `arch` (small, or the cpu recipe's model) for `a.minutes` and evaluate it; one result row."
    run_dir = Path(a.runs)/(arch + ('-cpu-recipe' if recipe_cpu else ''))
    if recipe_cpu: kw = dict(recipe='cpu')
    else:
        phase = TrainConfig(arch, scale=a.scale).resolve().phases[0]
        lr = TrainConfig(arch, scale=a.scale).resolve().spec.lr
        kw = dict(CPU_SETTINGS, size='small', patch=48 * a.scale, precision='bf16' if native_bf16('cpu') else 'fp32',
                  plans={phase: PhasePlan(None, lr, 'warmup-cosine', warmup=0.02)})
    t0 = time.time()
    run = train_and_evaluate(arch, a.data, run_dir, scale=a.scale, minutes=a.minutes, seed=a.seed, eval_sets=a.eval,
                             overwrite=True, quiet=True, **kw)
    learn, table = run['learn'], run['benchmarks']
    row = dict(arch=arch if not recipe_cpu else f'{arch} (cpu recipe: EDSR-Y 12x32)', params=n_params(learn.model),
               iterations=len(learn.recorder.losses), seconds=round(time.time() - t0),
               lr='recipe' if recipe_cpu else next(iter(kw['plans'].values())).lr)
    for name, r in table.iterrows():
        for col, v in r.items(): row[f'{name} {col}'] = round(float(v), 4)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--archs', nargs='+', default=['edsr', 'span', 'compact', 'realplksr', 'safmn'])
    ap.add_argument('--no-cpu-recipe', action='store_true', help="leave out the cpu recipe's own EDSR-Y")
    ap.add_argument('--data', default=str(SHARED / 'BSD68'), help='folder of HR training images (default: ../shared/datasets/BSD68)')
    ap.add_argument('--eval', nargs='+', default=[str(SHARED / 'Set5'), str(SHARED / 'Set14')], help='HR benchmark folders')
    ap.add_argument('--minutes', type=float, default=5.)
    ap.add_argument('--scale', type=int, default=2, choices=[2, 3, 4])
    ap.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's, as srwork train)")
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--runs', default='benchmarks/results/arch_quality_runs', help='run folders (replaced)')
    ap.add_argument('--out', default='benchmarks/results/arch_quality.json')
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    print(f"{len(a.archs) + (not a.no_cpu_recipe)} runs of {a.minutes:g} min, x{a.scale}, {torch.get_num_threads()} threads, "
          f"{'bf16' if native_bf16('cpu') else 'fp32 (no native bf16)'}, data {a.data}", flush=True)
    rows = []
    for arch in a.archs:
        rows.append(run_one(arch, a)); print(json.dumps(rows[-1]), flush=True)
    if not a.no_cpu_recipe:
        rows.append(run_one('edsr', a, recipe_cpu=True)); print(json.dumps(rows[-1]), flush=True)
    import pandas as pd
    with pd.option_context('display.width', 250): print(pd.DataFrame(rows).to_string(index=False))
    atomic_write_bytes(a.out, json.dumps(dict(config=vars(a), threads=torch.get_num_threads(), rows=rows), indent=1).encode())
    print(f"wrote {a.out}")


if __name__ == '__main__':
    sys.exit(main())
