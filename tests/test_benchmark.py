"The evaluation harness: the benchmark protocol, kinds of upscaler, tables, greyscale sources, `srwork bench`."
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError
from srwork.crappify import imresize
from srwork.metrics import psnr
from srwork.benchmark import Bicubic, benchmark_pair, benchmark_table, evaluate
from cli_runner import srwork_in_process

RNG = np.random.RandomState(0)


# ---------------------------------------------------------------- the evaluation harness
def _smooth(h, w, seed):
    "A smooth, photo-like test image (sums of random low-frequency waves), where bicubic beats nearest."
    r = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 8.0
    img = sum(np.sin(r.uniform(0.2, 1.5) * xx + r.uniform(0.2, 1.5) * yy + r.uniform(0, 6))[..., None] * r.uniform(0, 1, 3)
              for _ in range(4))
    img = (img - img.min()) / (img.max() - img.min())
    return np.round(img * 255).astype(np.uint8)


@pytest.fixture
def hr_dir(tmp_path):
    for i in range(3):
        Image.fromarray(_smooth(37 + i, 45, i)).save(tmp_path / f'{i}.png')
    return tmp_path


def test_benchmark_pair_is_matlab_protocol(hr_dir):
    hr, lr, grey = benchmark_pair(hr_dir / '0.png', 4)
    assert hr.shape == (3, 36, 44) and lr.shape == (3, 9, 11) and not grey
    a = np.asarray(Image.open(hr_dir / '0.png'))[:36, :44]
    assert np.array_equal(np.round(lr.permute(1, 2, 0).numpy() * 255).astype(np.uint8), imresize(a, 1 / 4))


def test_evaluate_kinds_of_upscaler(hr_dir):
    bic = evaluate(Bicubic(), hr_dir, 2)
    assert list(bic.image) == ['0.png', '1.png', '2.png', 'mean']
    assert bic.psnr.iloc[-1] == pytest.approx(bic.psnr.iloc[:-1].mean())
    assert bic.attrs['channel'] == 'Y (BT.601)' and bic.attrs['crop_border'] == 2

    class Up(torch.nn.Module):          # an nn.Module: MATLAB bicubic inside
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1))
        def forward(self, x): return imresize(x, 2) + self.w
    mod = evaluate(Up(), hr_dir, 2)
    assert mod.psnr.iloc[-1] == pytest.approx(bic.psnr.iloc[-1], abs=0.05)
    tiled = evaluate(Up(), hr_dir, 2, tile=8)              # models run tiled: same numbers as whole-image
    assert np.allclose(tiled.psnr, evaluate(Up(), hr_dir, 2, tile=None).psnr, atol=1e-6)
    fn = evaluate(lambda lr: lr.repeat_interleave(2, -1).repeat_interleave(2, -2), hr_dir, 2)
    assert fn.psnr.iloc[-1] < bic.psnr.iloc[-1]


def test_evaluate_scale_mismatch_and_table(hr_dir):
    x2 = lambda lr: lr.repeat_interleave(2, -1).repeat_interleave(2, -2)
    with pytest.raises(SRWorkError, match='is it a x4 model'):
        evaluate(x2, hr_dir, 4)
    t = benchmark_table({'x2 only': x2, 'bicubic': Bicubic()}, {'d': hr_dir}, scales=(2, 4))
    assert np.isnan(t.loc['x2 only', ('d', 'x4', 'psnr')]) and not np.isnan(t.loc['bicubic', ('d', 'x4', 'psnr')])
    assert 'Y channel' in t.attrs['note']


def test_evaluate_greyscale_source(tmp_path):
    g = RNG.randint(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / 'g.png')
    res = evaluate(Bicubic(), tmp_path, 2).psnr.iloc[0]
    up = imresize(imresize(g[..., None], 0.5), 2)[..., 0]
    assert res == pytest.approx(psnr(up, g, crop_border=2), abs=1e-9)


def test_cli_bench(hr_dir):
    r = srwork_in_process('bench', '--data', hr_dir, '--scale', 2, 3)
    assert r.returncode == 0, r.stderr
    assert 'bicubic' in r.stdout and 'x3' in r.stdout and 'Y channel' in r.stdout
    r = srwork_in_process('bench', '--data', hr_dir / 'missing')
    assert r.returncode == 1 and r.stderr.startswith('srwork: error:') and len(r.stderr.strip().splitlines()) == 1


def test_cli_bench_tells_same_named_models_apart(hr_dir, tmp_path):
    "Two runs' model.safetensors: two columns named by their folders (one used to replace the other silently)."
    from srwork.models import create_model
    from srwork.modelfiles import save_model
    for seed, run in enumerate('ab'):
        torch.manual_seed(seed)
        save_model(create_model('edsr', 'small', 2), tmp_path/run/'model.safetensors')
    r = srwork_in_process('bench', '--data', hr_dir, '--scale', 2, '--model', tmp_path/'a'/'model.safetensors',
                          '--model', tmp_path/'b'/'model.safetensors')
    assert r.returncode == 0, r.stderr
    header, psnr = r.stdout.splitlines()[0].split(), r.stdout.splitlines()[1].split()
    assert header == ['bicubic', 'a/model', 'b/model'], r.stdout
    assert psnr[-2] != psnr[-1], r.stdout                                  # two models measured, not one twice
