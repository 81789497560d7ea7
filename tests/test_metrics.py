"Metrics: known answers, independent references, the fastai metrics under normalisation."
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srwork.core import SRWorkError
from srwork.crappify import imresize
from srwork.core import rgb_to_y
from srwork.metrics import PSNR, SSIM, psnr, ssim, _as_batch255

RNG = np.random.RandomState(0)
HR = RNG.randint(20, 230, (40, 48, 3)).astype(np.uint8)


def _y(a):  # independent Y: the BT.601 formula written out on a uint8 HWC array
    a = a.astype(np.float64) / 255
    return 16 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


# ---------------------------------------------------------------- known answers
def test_y_conversion_values():
    white, black, red = (np.full((1, 1, 3), v, np.uint8) for v in (255, 0, 0))
    red[..., 0] = 255
    assert float(rgb_to_y(_as_batch255(white))) == pytest.approx(235.0)
    assert float(rgb_to_y(_as_batch255(black))) == pytest.approx(16.0)
    assert float(rgb_to_y(_as_batch255(red))) == pytest.approx(16 + 65.481)


def test_border_crop():
    sr = HR.copy()
    sr[:2] = 0; sr[-2:] = 0; sr[:, :2] = 0; sr[:, -2:] = 0    # damage only a 2-pixel frame
    assert psnr(sr, HR, crop_border=2) == float('inf')
    assert psnr(sr, HR, crop_border=1) < 40
    assert ssim(sr, HR, crop_border=2) == pytest.approx(1.0, abs=1e-12)


def test_rounds_to_8_bits_first():
    t = torch.from_numpy(HR).permute(2, 0, 1).double() / 255
    assert psnr(t + 0.4 / 255, t) == float('inf')              # less than half a level: same 8-bit image
    assert psnr(t + 0.6 / 255, t, y_channel=False) == pytest.approx(20 * math.log10(255), abs=1e-6)


def test_greyscale_single_channel():
    g = HR[..., 0]
    assert psnr(g + np.uint8(2), g) == pytest.approx(20 * math.log10(255 / 2), abs=1e-9)   # no Y conversion


def test_psnr_matches_skimage_on_y():
    noisy = np.clip(HR + RNG.normal(0, 8, HR.shape), 0, 255).astype(np.uint8)
    ref = peak_signal_noise_ratio(_y(HR)[3:-3, 3:-3], _y(noisy)[3:-3, 3:-3], data_range=255)
    assert psnr(noisy, HR, crop_border=3) == pytest.approx(ref, abs=1e-9)


def test_ssim_matches_skimage_symmetric_and_drops_with_noise():
    n1 = np.clip(HR + RNG.normal(0, 5, HR.shape), 0, 255).astype(np.uint8)
    n2 = np.clip(HR + RNG.normal(0, 25, HR.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(_y(n1), _y(HR), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255)
    assert ssim(n1, HR) == pytest.approx(ref, abs=1e-9)
    assert ssim(n1, HR) == pytest.approx(ssim(HR, n1), abs=1e-12)
    assert 1 > ssim(n1, HR) > ssim(n2, HR) > 0
    # RGB SSIM: mean of the per-channel values
    per = [structural_similarity(n1[..., c].astype(float), HR[..., c].astype(float), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255) for c in range(3)]
    assert ssim(n1, HR, y_channel=False) == pytest.approx(np.mean(per), abs=1e-9)


def test_batched_torch_on_device():
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    a = torch.rand(4, 3, 24, 24, device=dev)
    b = (a + 0.05 * torch.randn_like(a)).clamp(0, 1)
    p, s = psnr(b, a, 2), ssim(b, a, 2)
    assert p.shape == (4,) and s.shape == (4,) and p.device.type == dev
    for i in range(4):
        assert float(p[i]) == pytest.approx(psnr(b[i], a[i], 2), abs=1e-9)


def test_bad_shapes():
    with pytest.raises(ValueError, match='sizes differ'):
        psnr(HR, HR[:-1])
    with pytest.raises(ValueError, match='11x11'):
        ssim(HR[:12, :12], HR[:12, :12], crop_border=2)


# ---------------------------------------------------------------- fastai metrics in a real Learner
def test_fastai_metrics_undo_normalisation(tmp_path):
    from fastai.learner import Learner
    from srwork.data import sr_dataloaders
    for i in range(4):
        Image.fromarray(RNG.randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f'{i}.png')
    dls = sr_dataloaders(tmp_path, scale=2, patch_size=32, bs=2, valid_pct=0.5, upsample_input=True, normalize=True)
    learn = Learner(dls, torch.nn.Identity(), loss_func=torch.nn.functional.mse_loss, metrics=[PSNR(2), SSIM(2)])
    learn.model.register_parameter('dummy', torch.nn.Parameter(torch.zeros(1)))
    loss, p, s = learn.validate()
    # direct: the (un-normalised) upsampled inputs against the targets
    dls_raw = sr_dataloaders(tmp_path, scale=2, patch_size=32, bs=2, valid_pct=0.5, upsample_input=True)
    xs, ys = zip(*[(x, y) for x, y in dls_raw.valid])
    x, y = torch.cat(xs), torch.cat(ys)
    assert p == pytest.approx(float(psnr(x, y, 2).mean()), abs=1e-3)
    assert s == pytest.approx(float(ssim(x, y, 2).mean()), abs=1e-5)
    assert 15 < p < 60


def test_niqe_is_the_matlab_releases():
    "NIQE of the release's test image (BasicSR's tests/data/baboon.png): MATLAB R2021a gives 5.72957338; blur and noise raise it; a flat image has none."
    from pathlib import Path
    from PIL import Image
    from srwork.metrics import niqe
    from srwork.crappify import imresize
    baboon = np.asarray(Image.open(Path(__file__).parent/'data'/'baboon.png').convert('RGB'))
    assert abs(niqe(baboon) - 5.72957338) < 1e-3
    assert abs(niqe(torch.from_numpy(baboon).permute(2, 0, 1).float() / 255) - niqe(baboon)) < 1e-9        # a tensor: the same
    blurred = imresize(imresize(baboon.astype(np.float32) / 255, 0.25), 4.)
    assert niqe(blurred) > niqe(baboon) + 1
    assert np.isnan(niqe(np.full((200, 200, 3), 128, np.uint8)))
    with pytest.raises(ValueError, match="NIQE needs at least two 96x96 blocks, and the image is 100x90"): niqe(baboon[:90, :100])


def test_ciede2000_equals_the_published_pairs_and_scikit_image():
    "Sharma, Wu and Dalal (2005) test pairs (their table 1), scikit-image's deltaE_ciede2000 on sRGB images, and the tint a colour shift catches."
    from skimage.color import rgb2lab, deltaE_ciede2000
    from srwork.metrics import ciede2000, delta_e, colour_shift
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
             ((50, 2.8361, -74.0200), (50, 0, -82.7485), 3.4412), ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (73, 25, -18), 27.1492), ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644)]
    for a, b, want in pairs: assert abs(float(ciede2000(np.array(a), np.array(b))) - want) < 1e-4, (a, b, want)
    rng = np.random.RandomState(3)
    x, y = rng.randint(0, 256, (24, 20, 3)).astype(np.uint8), rng.randint(0, 256, (24, 20, 3)).astype(np.uint8)
    assert abs(delta_e(x, y) - deltaE_ciede2000(rgb2lab(x), rgb2lab(y)).mean()) < 1e-9
    assert abs(delta_e(x, y, crop_border=2) - deltaE_ciede2000(rgb2lab(x[2:-2, 2:-2]), rgb2lab(y[2:-2, 2:-2])).mean()) < 1e-9
    smooth = imresize(rng.rand(12, 10, 3), 4.).clip(0, 1)
    yellow = np.clip(smooth + np.array([6, 6, -6]) / 255, 0, 1)
    assert colour_shift(imresize(smooth, 2.), smooth) < 0.5 < 2 < colour_shift(imresize(yellow, 2.), smooth)
