"Crappifier: MATLAB imresize against an independent reference, determinism, presets, torch vs numpy paths."
import math

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError
from srwork.crappify import (CRAPPIFIER_PRESETS, Blur, ColorJitter, Crappifier, GaussianNoise, Greyscale, Holes, JPEG,
                             PoissonNoise, Resize, Sinc, TextOverlay, Warp, crappifier_preset, imresize)


# ---------------------------------------------------------------- an independent MATLAB imresize
# Written out from MATLAB's documented algorithm (imresize.m: contributions(), cubic(), symmetric
# boundary), one output sample at a time with scalar arithmetic; it shares no code with srwork.
def _ref_cubic(x):
    ax = abs(x)
    if ax <= 1: return 1.5 * ax ** 3 - 2.5 * ax ** 2 + 1
    if ax <= 2: return -0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2
    return 0.0


def _ref_triangle(x):
    return max(0.0, 1 - abs(x))


def _ref_resize_1d(v, out_len, kernel, kwidth):
    n = len(v)
    scale = out_len / n
    out = []
    for i in range(1, out_len + 1):
        if scale < 1:
            h = lambda t: scale * kernel(scale * t)
            width = kwidth / scale
        else:
            h, width = kernel, kwidth
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = math.ceil(width) + 2
        acc, wsum = 0.0, 0.0
        for j in range(left, left + taps):
            wgt = h(u - j)
            # symmetric boundary: ... 2 1 | 1 2 ... n | n n-1 ...
            k = (j - 1) % (2 * n)
            src = k if k < n else 2 * n - 1 - k
            acc += wgt * v[src]
            wsum += wgt
        out.append(acc / wsum)
    return out


def _ref_imresize(a, out_h, out_w, kernel=_ref_cubic, kwidth=4.0):
    a = np.asarray(a, dtype=np.float64)
    tmp = np.stack([np.array([_ref_resize_1d(a[:, x, c], out_h, kernel, kwidth) for x in range(a.shape[1])]).T
                    for c in range(a.shape[2])], axis=2)
    return np.stack([np.array([_ref_resize_1d(tmp[y, :, c], out_w, kernel, kwidth) for y in range(out_h)])
                     for c in range(a.shape[2])], axis=2)


@pytest.mark.parametrize('scale', [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_imresize_bicubic_matches_reference(scale):
    a = np.random.RandomState(1).rand(12, 17, 3)
    oh, ow = math.ceil(12 * scale), math.ceil(17 * scale)
    got = imresize(a, scale)
    assert got.shape == (oh, ow, 3)
    np.testing.assert_allclose(got, _ref_imresize(a, oh, ow), atol=1e-6, rtol=0)


def test_imresize_down_then_up_matches_reference():
    a = np.random.RandomState(2).rand(24, 18, 3)
    down, up = imresize(a, 1 / 3), None
    up = imresize(down, 3)
    ref_down = _ref_imresize(a, 8, 6)
    np.testing.assert_allclose(down, ref_down, atol=1e-6, rtol=0)
    np.testing.assert_allclose(up, _ref_imresize(ref_down, 24, 18), atol=1e-6, rtol=0)


def test_imresize_bilinear_and_size_match_reference():
    a = np.random.RandomState(3).rand(10, 13, 3)
    np.testing.assert_allclose(imresize(a, size=(7, 19), mode='bilinear'),
                               _ref_imresize(a, 7, 19, _ref_triangle, 2.0), atol=1e-6, rtol=0)


def test_imresize_uint8_rounds_half_up_like_matlab():
    a = np.random.RandomState(4).randint(0, 256, (16, 16, 3)).astype(np.uint8)
    got = imresize(a, 0.5)
    ref = np.clip(np.floor(_ref_imresize(a.astype(np.float64), 8, 8) + 0.5), 0, 255).astype(np.uint8)
    assert got.dtype == np.uint8 and np.array_equal(got, ref)


def test_imresize_torch_matches_numpy_and_batches():
    a = np.random.RandomState(5).rand(2, 3, 20, 14).astype(np.float32)
    got = imresize(torch.from_numpy(a), 0.5)
    assert got.shape == (2, 3, 10, 7)
    for i in range(2):
        np.testing.assert_allclose(got[i].permute(1, 2, 0).numpy(), imresize(a[i].transpose(1, 2, 0).astype(np.float64), 0.5),
                                   atol=1e-5)


def test_imresize_rejects_unknown_mode():
    with pytest.raises(ValueError, match='unknown resize mode'):
        imresize(np.zeros((4, 4, 3)), 0.5, mode='lanczos9')


# ---------------------------------------------------------------- presets, determinism, parameters
HR = np.random.RandomState(6).rand(96, 80, 3).astype(np.float32)


@pytest.mark.parametrize('name', CRAPPIFIER_PRESETS)
@pytest.mark.parametrize('scale', [2, 4])
def test_presets_are_deterministic_and_sized(name, scale):
    c = crappifier_preset(name, scale=scale, seed=11)
    a, b = c(HR, item=5, epoch=2), c(HR, item=5, epoch=2)
    assert a.shape == (96 // scale, 80 // scale, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    others = [c(HR, item=5, epoch=e) for e in range(3, 8)]
    if name != 'bicubic':    # bicubic has nothing random: every epoch gives the same LR
        assert any(not np.array_equal(a, o) for o in others)
    else:
        assert all(np.array_equal(a, o) for o in others)


def test_seed_and_item_change_the_draw():
    c1, c2 = crappifier_preset('restoration', 2, seed=1), crappifier_preset('restoration', 2, seed=2)
    outs1 = [c1(HR, item=i) for i in range(6)]
    outs2 = [c2(HR, item=i) for i in range(6)]
    assert any(not np.array_equal(a, b) for a, b in zip(outs1, outs2))
    assert len({o.tobytes() for o in outs1}) > 1
    # string items (file names) are keys too
    assert np.array_equal(c1(HR, item='0001.png'), c1(HR, item='0001.png'))


def test_last_params_and_repr():
    c = crappifier_preset('course-v3', 2)
    c(HR, item=0)
    names = [n for n, _ in c.last_params]
    assert names == ['Resize', 'JPEG']
    q = c.last_params[1][1]['quality']
    assert 10 <= q <= 70 and c.last_params[0][1]['mode'] == 'bilinear'
    r = repr(c)
    assert "Crappifier('course-v3', scale=2" in r and 'JPEG(quality=(10, 70), stamp=True' in r


def test_input_kinds_round_trip():
    c = crappifier_preset('bicubic', 2)
    u8 = (HR * 255).astype(np.uint8)
    assert c(u8).dtype == np.uint8
    pil = c(Image.fromarray(u8))
    assert isinstance(pil, Image.Image) and pil.size == (40, 48)


def test_scale_mismatch_and_unknown_preset():
    with pytest.raises(ValueError, match='scale'):
        Crappifier([Resize(4)], scale=2)
    with pytest.raises(SRWorkError, match='unknown crappifier preset'):
        crappifier_preset('vintage')
    # a pipeline without a final resize gets one, visibly
    c = Crappifier([GaussianNoise()], scale=3)
    assert isinstance(c.steps[-1], Resize) and c.steps[-1].scale == 3


def test_lr_only_steps_do_not_touch_input_array():
    x = HR.copy()
    for s in [Holes(), TextOverlay(), GaussianNoise(), JPEG(), Blur(), Warp(), ColorJitter(), Greyscale(), PoissonNoise()]:
        Crappifier([s], seed=0)(x, item=1)
        assert np.array_equal(x, HR), type(s).__name__


# ---------------------------------------------------------------- item path vs torch path
@pytest.mark.parametrize('step', [Resize(2), Resize(2, modes=('area',)), Blur((9, 9), aniso_prob=1.), Sinc((11, 11)),
                                  ColorJitter(0.2, 0.2, 0.2, 0.1), Greyscale(), Holes(fills=('black', 'white'))])
def test_torch_path_equals_item_path_without_noise(step):
    c = Crappifier([step], scale=step.scale if isinstance(step, Resize) else 1, seed=3)
    x = torch.from_numpy(HR).permute(2, 0, 1)[None]
    for item in range(3):
        np.testing.assert_allclose(c.batch(x, items=[item])[0].permute(1, 2, 0).numpy(), c(HR, item=item), atol=1e-4)


@pytest.mark.parametrize('step', [GaussianNoise((20, 20), grey_prob=0.), GaussianNoise((10, 10), grey_prob=1.),
                                  PoissonNoise((1., 1.), grey_prob=0.)])
def test_noise_distribution_same_on_both_paths(step):
    "Noise realisations differ between numpy and torch, but their strength must agree."
    base = np.full((64, 64, 3), 0.5, dtype=np.float32) + np.linspace(-0.2, 0.2, 64, dtype=np.float32)[None, :, None]
    c = Crappifier([step], seed=0)
    x = torch.from_numpy(base).permute(2, 0, 1)[None].repeat(8, 1, 1, 1)
    item_std = np.std([c(base, item=i) - base for i in range(8)])
    torch_std = float((c.batch(x, items=range(8)) - x).std())
    assert item_std > 0.01
    assert abs(item_std - torch_std) / item_std < 0.05, (item_std, torch_std)


def test_whole_preset_distribution_same_on_both_paths():
    c = crappifier_preset('restoration', 2, seed=0)
    ref = imresize(HR, 0.5)
    x = torch.from_numpy(HR).permute(2, 0, 1)[None].repeat(40, 1, 1, 1)
    item_err = np.mean([np.abs(c(HR, item=i) - ref).mean() for i in range(40)])
    torch_err = float((c.batch(x, items=range(40)) - torch.from_numpy(ref).permute(2, 0, 1).float()).abs().mean())
    assert abs(item_err - torch_err) / item_err < 0.1, (item_err, torch_err)


def test_batch_path_stays_on_its_device():
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    c = crappifier_preset('realesrgan', 4)
    x = torch.from_numpy(HR).permute(2, 0, 1)[None].repeat(4, 1, 1, 1).to(dev)
    y = c.batch(x)
    assert y.device == x.device and y.shape == (4, 3, 24, 20)
    assert len(c.last_params) == 4
