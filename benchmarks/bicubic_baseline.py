#!/usr/bin/env python
"""Reproduce the published bicubic baseline (Y channel, border crop = scale, MATLAB-bicubic LR).

    python benchmarks/bicubic_baseline.py [--data ../shared/datasets]

Prints our PSNR/SSIM next to the published numbers with the difference, and exits 1 if any PSNR is
further from the published value than the tolerance (0.05 dB on Set5, 0.1 dB on Set14; SSIM 0.002).
"""
import argparse, sys
from pathlib import Path

from srwork.benchmark import Bicubic, benchmark_table

PUBLISHED = {  # DESIGN.md section 5
    ('Set5', 2, 'psnr'): 33.66, ('Set5', 3, 'psnr'): 30.39, ('Set5', 4, 'psnr'): 28.42,
    ('Set5', 2, 'ssim'): 0.9299, ('Set5', 4, 'ssim'): 0.8104,
    ('Set14', 2, 'psnr'): 30.24, ('Set14', 3, 'psnr'): 27.55, ('Set14', 4, 'psnr'): 26.00,
}
TOL = {('Set5', 'psnr'): 0.05, ('Set14', 'psnr'): 0.1, ('Set5', 'ssim'): 0.002, ('Set14', 'ssim'): 0.002}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', default=str(Path(__file__).resolve().parents[2] / 'shared' / 'datasets'),
                    help='folder holding Set5/ and Set14/ (default: ../shared/datasets)')
    a = ap.parse_args()
    root = Path(a.data)
    sets = {n: root / n for n in ('Set5', 'Set14')}
    missing = [str(p) for p in sets.values() if not p.is_dir()]
    if missing: sys.exit(f"benchmark sets not found: {', '.join(missing)} (pass --data)")
    table = benchmark_table({'bicubic': Bicubic()}, sets, scales=(2, 3, 4))
    print(table.attrs['note'])
    print(f"{'set':<6} {'scale':>5} {'metric':>6} {'ours':>8} {'published':>9} {'diff':>8}  ok")
    bad = 0
    for (dset, sc, metric), ours in table.loc['bicubic'].items():
        s = int(sc[1:])
        pub = PUBLISHED.get((dset, s, metric))
        if pub is None:
            print(f"{dset:<6} {sc:>5} {metric:>6} {ours:>8.4f} {'-':>9} {'-':>8}")
            continue
        ok = abs(ours - pub) <= TOL[(dset, metric)]
        bad += not ok
        print(f"{dset:<6} {sc:>5} {metric:>6} {ours:>8.4f} {pub:>9.4f} {ours - pub:>+8.4f}  {'yes' if ok else 'NO'}")
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
