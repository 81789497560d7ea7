"Real-ESRGAN's degradation: each kernel and step against code written here from the published formulas (or OpenCV/Pillow), the drawn parameters against the published probabilities, the pipeline's order, and impossible options."
import io, math

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError
from srwork.degradations import (KERNEL_TYPES, RealESRGANDegradation, RealESRGANOptions, draw_batch, draw_item, draw_kernel,
                                 filter2d, gaussian_kernel, gaussian_noise, generalized_gaussian_kernel, jpeg, jpeg_tables,
                                 plateau_kernel, poisson_noise, sinc_kernel, usm_sharp)


def reference_kernel(kind, size, sx, sy, theta, beta=1.):
    "Pixel by pixel from the formulas: Sigma = R diag(sx^2, sy^2) R^T, q = x^T Sigma^-1 x, then exp(-q/2), exp(-q^b/2) or 1/(1+q^b)."
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    inv = np.linalg.inv(rot @ np.diag([sx ** 2, sy ** 2]) @ rot.T)
    k = np.zeros((size, size))
    c = size // 2
    for row in range(size):
        for col in range(size):
            v = np.array([col - c, row - c], dtype=np.float64)        # x along columns, y along rows
            q = v @ inv @ v
            k[row, col] = {'gauss': math.exp(-q / 2), 'gen': math.exp(-q ** beta / 2), 'plateau': 1 / (1 + q ** beta)}[kind]
    return k / k.sum()


def reference_sinc(size, omega):
    from scipy.special import j1
    c, k = size // 2, np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            r = math.hypot(row - c, col - c)
            k[row, col] = omega ** 2 / (4 * math.pi) if r == 0 else omega * j1(omega * r) / (2 * math.pi * r)
    return k / k.sum()


@pytest.mark.parametrize('seed', range(4))
def test_each_kernel_equals_its_formula(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.choice([7, 11, 15, 21])); sx, sy = rng.uniform(0.2, 3, 2); theta = rng.uniform(-math.pi, math.pi)
    beta_g, beta_p = rng.uniform(0.5, 4), rng.uniform(1, 2)
    assert np.abs(gaussian_kernel(size, sx, sy, theta) - reference_kernel('gauss', size, sx, sy, theta)).max() < 1e-6
    assert np.abs(gaussian_kernel(size, sx) - reference_kernel('gauss', size, sx, sx, 0.)).max() < 1e-6        # isotropic
    assert np.abs(generalized_gaussian_kernel(size, sx, sy, theta, beta_g) - reference_kernel('gen', size, sx, sy, theta, beta_g)).max() < 1e-6
    assert np.abs(plateau_kernel(size, sx, sy, theta, beta_p) - reference_kernel('plateau', size, sx, sy, theta, beta_p)).max() < 1e-6
    omega = rng.uniform(math.pi / 5, math.pi)
    assert np.abs(sinc_kernel(size, omega) - reference_sinc(size, omega)).max() < 1e-6


def test_filtering_equals_opencv_per_image():
    import cv2
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((3, 3, 40, 36)))
    ks = [gaussian_kernel(21, 2., 1., 0.7), plateau_kernel(21, 1.5, 0.5, -1., 1.5), sinc_kernel(21, 1.)]
    y = filter2d(x, torch.from_numpy(np.stack(ks)))
    for xi, k, yi in zip(x, ks, y):
        ref = cv2.filter2D(xi.permute(1, 2, 0).numpy(), -1, k.astype(np.float64), borderType=cv2.BORDER_REFLECT_101)
        assert np.abs(yi.permute(1, 2, 0).numpy() - ref).max() < 1e-6


def test_usm_sharpening_equals_the_opencv_definition():
    "Real-ESRGAN's usm_sharp: sharp = I + 0.5 (I - blur), mask where |I - blur| > 10 levels, the mask softened by the same 51x51 blur (sigma 0: OpenCV's 8)."
    import cv2
    from srwork.core import sample_images, load_image
    img = load_image(sample_images()/'chelsea.png')[:, :96, :120].permute(1, 2, 0).numpy().astype(np.float64)
    blur = cv2.GaussianBlur(img, (51, 51), 0)
    residual = img - blur
    soft = cv2.GaussianBlur((np.abs(residual) * 255 > 10).astype(np.float64), (51, 51), 0)
    ref = soft * np.clip(img + 0.5 * residual, 0, 1) + (1 - soft) * img
    got = usm_sharp(torch.from_numpy(img).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(got - ref).max() < 1e-6


def test_jpeg_tables_are_libjpegs_and_the_image_is_within_a_level_or_two():
    from srwork.core import sample_images, load_image
    photo = load_image(sample_images()/'chelsea.png')[None, :, :128, :200]
    for q in (10, 30, 37, 50, 75, 95):
        buf = io.BytesIO(); Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, 'JPEG', quality=q)
        im = Image.open(buf)
        y, c = jpeg_tables(q)
        assert list(y.flatten().astype(int)) == list(im.quantization[0]) and list(c.flatten().astype(int)) == list(im.quantization[1])
        ref = torch.from_numpy(np.asarray(im.convert('RGB'), dtype=np.float64) / 255).permute(2, 0, 1)[None]
        ours = jpeg(photo.double(), q)
        psnr = float(10 * torch.log10(1 / ((ours - ref) ** 2).mean()))
        assert psnr > 40, (q, psnr)                                               # (measured: 45-48 dB)
        assert float(((ours - photo) ** 2).mean()) > float(((ours - ref) ** 2).mean())   # nearer libjpeg's decode than the original
    odd = jpeg(photo[..., :37, :53], [30])                                        # sizes that are not a multiple of 16
    assert odd.shape == (1, 3, 37, 53)


def test_noise_follows_its_definitions():
    x = torch.full((2, 3, 64, 64), 0.5, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = gaussian_noise(x, [10., 20.], [0., 1.], g)
    assert abs(float((y[0] - x[0]).std()) - 10 / 255) < 0.002 and abs(float((y[1] - x[1]).std()) - 20 / 255) < 0.003
    assert torch.equal(y[1, 0], y[1, 1]) and not torch.equal(y[0, 0], y[0, 1])   # grey: one field on all channels
    img = torch.from_numpy(np.random.default_rng(1).random((2, 3, 32, 32)))
    a = poisson_noise(img, [2., 0.5], [0., 1.], torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)                                            # from the formula, same draws in the same order
    q = (img * 255).round() / 255
    vals = torch.tensor([2. ** math.ceil(math.log2(len(torch.unique(qi)))) for qi in q], dtype=img.dtype).view(2, 1, 1, 1)
    colour = torch.poisson(q * vals, generator=g) / vals - q
    luma = ((0.2989 * img[:, :1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:]) * 255).round() / 255
    lvals = torch.tensor([2. ** math.ceil(math.log2(len(torch.unique(li)))) for li in luma], dtype=img.dtype).view(2, 1, 1, 1)
    grey = torch.poisson(luma * lvals, generator=g) / lvals - luma
    ref = torch.stack([img[0] + 2. * colour[0], img[1] + 0.5 * grey[1].expand(3, -1, -1)]).clamp(0, 1)
    assert (a - ref).abs().max() < 1e-12


def _within(count, n, p, what):
    sd = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= 4.5 * sd + 1e-9, f"{what}: {count}/{n} drawn, expected {p:.3f} ({n * p:.0f} +- {4.5 * sd:.0f})"


def test_the_drawn_parameters_follow_the_published_distributions():
    o, n = RealESRGANOptions(), 20000
    rng = np.random.default_rng(2026)
    first = [draw_kernel(rng, o)[0] for _ in range(n)]
    second = [draw_kernel(rng, o, second=True)[0] for _ in range(n)]
    for params, sinc_p, probs, sigma in ((first, o.sinc_prob, o.kernel_prob, o.blur_sigma), (second, o.sinc_prob2, o.kernel_prob2, o.blur_sigma2)):
        kinds = [p['kind'] for p in params]
        _within(kinds.count('sinc'), n, sinc_p, 'sinc')
        for kind, prob in zip(KERNEL_TYPES, probs): _within(kinds.count(kind), n, (1 - sinc_p) * prob, kind)
        for size in range(7, 22, 2): _within(sum(p['size'] == size for p in params), n, 1 / 8, f"size {size}")
        blur = [p for p in params if p['kind'] != 'sinc']
        assert all(sigma[0] <= p['sigma_x'] <= sigma[1] and sigma[0] <= p['sigma_y'] <= sigma[1] for p in blur)
        assert all(p['sigma_x'] == p['sigma_y'] and p['theta'] == 0 for p in blur if not p['kind'].endswith('aniso'))
        sincs = [p for p in params if p['kind'] == 'sinc']
        assert all((math.pi / 3 if p['size'] < 13 else math.pi / 5) <= p['omega'] <= math.pi for p in sincs)
        assert min(p['omega'] for p in sincs if p['size'] >= 13) < math.pi / 3                       # the wider range is used
    gen = [p['beta'] for p in first if p['kind'].startswith('generalized')]
    _within(sum(b < 1 for b in gen), len(gen), 0.5, 'generalized beta below 1')
    assert all(0.5 <= b <= 4 for b in gen)
    plateau = [p['beta'] for p in first if p['kind'].startswith('plateau')]
    _within(sum(b == 1 for b in plateau), len(plateau), 0.5, 'plateau beta exactly 1 (betap_range (1, 2))')
    items = [draw_item(rng, o)[0] for _ in range(n)]
    _within(sum(p['final_sinc']['kind'] == 'sinc' for p in items), n, o.final_sinc_prob, 'final sinc')
    _within(sum(p['grey1'] for p in items), n, o.gray_noise_prob, 'grey noise')
    assert all(o.noise_range[0] <= p['sigma1'] <= o.noise_range[1] and 30 <= p['jpeg1'] <= 95 for p in items)
    batches = [draw_batch(rng, o) for _ in range(n)]
    _within(sum(b['noise1'] == 'gaussian' for b in batches), n, o.gaussian_noise_prob, 'Gaussian noise (first)')
    _within(sum(b['noise2'] == 'gaussian' for b in batches), n, o.gaussian_noise_prob2, 'Gaussian noise (second)')
    _within(sum(b['second_blur'] for b in batches), n, o.second_blur_prob, 'second blur')
    _within(sum(b['final_order'] == 'resize_then_jpeg' for b in batches), n, 0.5, 'final order')
    for k, (kind, prob) in enumerate(zip(('up', 'down', 'keep'), o.resize_prob)): _within(sum(b['resize1'] == kind for b in batches), n, prob, f"resize {kind}")
    for kind, prob in zip(('up', 'down', 'keep'), o.resize_prob2): _within(sum(b['resize2'] == kind for b in batches), n, prob, f"second resize {kind}")
    for mode in ('area', 'bilinear', 'bicubic'): _within(sum(b['mode1'] == mode for b in batches), n, 1 / 3, mode)
    assert all((1 <= b['factor1'] <= 1.5) if b['resize1'] == 'up' else (0.15 <= b['factor1'] <= 1) for b in batches)


def test_the_pipeline_runs_the_steps_in_realesrgans_order(monkeypatch):
    "With the draws fixed, the degradation equals the steps composed by hand in Real-ESRGAN's order, for both final orders."
    from srwork import degradations as d
    hr = torch.from_numpy(np.random.default_rng(3).random((2, 3, 64, 48)))
    deg = RealESRGANDegradation(scale=4, seed=0)
    batch, per, ks = deg.draw([0, 1])
    for order in ('resize_then_jpeg', 'jpeg_then_resize'):
        b = dict(batch, resize1='down', factor1=0.6, mode1='bilinear', noise1='gaussian', second_blur=True, resize2='up', factor2=1.1,
                 mode2='area', noise2='poisson', final_order=order, final_mode='bicubic')
        monkeypatch.setattr(deg, 'draw', lambda items, epoch=0: (b, per, ks))
        got = deg(hr, items=[0, 1])
        gen = torch.Generator().manual_seed(int(np.random.default_rng([0, 0, 2, 0, 1]).integers(2**62)))
        col = lambda k: [p[k] for p in per]
        x = d.filter2d(d.usm_sharp(hr.float()), ks['kernel1'])
        x = torch.nn.functional.interpolate(x, scale_factor=0.6, mode='bilinear', align_corners=False)
        x = d.jpeg(d.gaussian_noise(x, col('sigma1'), col('grey1'), gen), col('jpeg1'))
        x = torch.nn.functional.interpolate(d.filter2d(x, ks['kernel2']), size=(int(64 / 4 * 1.1), int(48 / 4 * 1.1)), mode='area')
        x = d.poisson_noise(x, col('poisson2'), col('grey2'), gen)
        up = lambda t: torch.nn.functional.interpolate(t, size=(16, 12), mode='bicubic', align_corners=False)
        x = d.jpeg(d.filter2d(up(x), ks['final_sinc']).clamp(0, 1), col('jpeg2')) if order == 'resize_then_jpeg' else d.filter2d(up(d.jpeg(x, col('jpeg2'))), ks['final_sinc'])
        assert torch.equal(got, ((x * 255).round().clamp(0, 255) / 255).to(hr.dtype)), order


def test_degradation_is_seeded_per_item_and_epoch_and_keeps_the_device_and_dtype():
    hr = torch.rand(3, 3, 48, 40)
    deg = RealESRGANDegradation(scale=2, seed=4)
    a = deg(hr, items=['a', 'b', 'c'])
    assert a.shape == (3, 3, 24, 20) and a.dtype == hr.dtype and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, deg(hr, items=['a', 'b', 'c'])) and not torch.equal(a, deg(hr, items=['a', 'b', 'c'], epoch=1))
    assert torch.equal((a * 255).round(), a * 255)                      # 8-bit levels, as Real-ESRGAN rounds its LR
    assert len(deg.last_params) == 3 and {'batch', 'kernel1', 'jpeg2'} <= set(deg.last_params[0])
    tiny = deg(torch.rand(1, 3, 8, 8))                                   # smaller than a kernel: borders replicate, no error
    assert tiny.shape == (1, 3, 4, 4)


@pytest.mark.parametrize('bad, msg', [
    (dict(noise_range=(30, 1)), "realesrgan option noise_range=(30, 1): its low end is above its high end"),
    (dict(kernel_prob=(0.5, 0.5, 0.5, 0., 0., 0.)), "kernel_prob=(0.5, 0.5, 0.5, 0.0, 0.0, 0.0): must sum to 1, not 1.5"),
    (dict(jpeg_range2=(30, 120)), "jpeg_range2=(30, 120): must lie within [1, 100]"),
    (dict(sinc_prob=1.5), "sinc_prob=1.5: must be a probability in [0, 1]"),
    (dict(kernel_list=('box',), kernel_prob=(1.,)), "kernel_list=('box',): kernel types are iso"),
    (dict(betap_range=(1.5, 2.)), "betap_range=(1.5, 2.0): must straddle 1"),
    (dict(resize_range=(0.5, 0.9)), "resize_range=(0.5, 0.9): must straddle 1"),
    (dict(resize_prob2=(0.3, 0.3)), "resize_prob2=(0.3, 0.3): must be 3 probabilities in [0, 1]"),
    (dict(scale=5), "scale=5: must be 1, 2, 3, 4 or 8")])
def test_an_impossible_option_is_one_line_naming_it(bad, msg):
    with pytest.raises(SRWorkError) as e: RealESRGANDegradation(**bad)
    assert msg in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_the_preset_is_the_faithful_degradation():
    from srwork.crappify import RealESRGANCrappifier, crappifier_preset
    c = crappifier_preset('realesrgan', 2, seed=3)
    assert isinstance(c, RealESRGANCrappifier) and c.scale == 2 and c.seed == 3 and c.degradation.options.scale == 2
    hr = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    one = c(hr, item=7)
    assert one.dtype == np.uint8 and one.shape == (32, 24, 3) and np.array_equal(one, c(hr, item=7))
    t = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
    assert np.array_equal(one, (c.batch(t, items=[7])[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))   # a batch of one: the same code


def test_srwork_crappify_previews_what_a_model_trains_on(tmp_path):
    "`srwork crappify`: examples with their parameters; bad files named, the rest written, exit 1; a reused folder refused without --overwrite, nothing changed."
    import hashlib, json, shutil
    from cli_runner import srwork_in_process as srwork
    from srwork.core import sample_images
    src = tmp_path/'hr'; src.mkdir()
    shutil.copy(sample_images()/'chelsea.png', src/'chelsea.png')
    Image.new('RGB', (3, 3)).save(src/'tiny.png'); (src/'broken.png').write_bytes(b'not an image')
    r = srwork('crappify', src, '-o', tmp_path/'out', '--variants', '2', '--crop', '64', '--scale', '4')
    assert r.returncode == 1, r.stderr
    assert f"{src/'tiny.png'}: 3x3 is smaller than the 64 px crop" in r.stderr and f"{src/'broken.png'}: not a recognised image file" in r.stderr
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == ['chelsea_1.json', 'chelsea_1.png', 'chelsea_2.json', 'chelsea_2.png']
    assert Image.open(tmp_path/'out'/'chelsea_1.png').size == (16, 16)
    meta = json.loads((tmp_path/'out'/'chelsea_2.json').read_text())
    assert meta['preset'] == 'realesrgan' and meta['variant'] == 2 and {'batch', 'kernel1', 'kernel2', 'final_sinc', 'jpeg1'} <= set(meta['params'])
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path/'out').iterdir()}
    r = srwork('crappify', src/'chelsea.png', '-o', tmp_path/'out', '--variants', '2', '--crop', '64')
    assert r.returncode == 1 and 'chelsea_1.png exists: pass --overwrite' in r.stderr, r.stderr
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path/'out').iterdir()}
    r = srwork('crappify', src/'chelsea.png', '-o', tmp_path/'out', '--variants', '2', '--crop', '64', '--seed', '1', '--overwrite')
    assert r.returncode == 0 and before != {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path/'out').iterdir()}


def test_the_gpu_batch_path_mixes_batches_through_the_pair_pool():
    "DataBlocks' batch path with the realesrgan preset: training batches go through Real-ESRGAN's pool (pairs kept together), validation batches never."
    from fastai.torch_core import TensorImage
    from srwork.crappify import RealESRGANCrappifier
    from srwork.data import DegradeBatch
    t = DegradeBatch(RealESRGANCrappifier(scale=2, pool_size=4))
    lr, _ = t((TensorImage(torch.empty(0)), TensorImage(torch.rand(2, 3, 16, 16))), split_idx=1)
    assert lr.shape == (2, 3, 8, 8)                                         # the real degradation, on a validation batch
    t.crappifier.batch = lambda y, items=None, epoch=0: torch.nn.functional.avg_pool2d(y, 2)   # (an LR that shows which HR it came from)
    batches = [TensorImage(torch.full((2, 3, 16, 16), 0.2 + 0.15 * i)) for i in range(5)]
    empty = TensorImage(torch.empty(0))
    got = [t((empty, hr), split_idx=0) for hr in batches]
    hr_levels = [sorted(round(float(v), 2) for v in hr[:, 0, 0, 0]) for _, hr in got]
    assert hr_levels[:2] == [[0.2, 0.2], [0.35, 0.35]] and hr_levels[2:] != [[0.5, 0.5], [0.65, 0.65], [0.8, 0.8]]    # mixed once full
    for lr, hr in got: assert torch.allclose(lr[:, 0, 0, 0], hr[:, 0, 0, 0], atol=1 / 255)     # each LR with its own HR
    lr, hr = t((empty, batches[4]), split_idx=1)
    assert torch.equal(hr, batches[4])


def test_bench_without_ground_truth_judges_real_photos(tmp_path):
    "`srwork bench --no-reference`: NIQE of the photos, bicubic and each model's output, their colour shift, a side-by-side picture; misuse is one line."
    import shutil
    import srwork.edsr  # noqa: F401
    from cli_runner import srwork_in_process as srwork
    from srwork.core import sample_images
    from srwork.models import create_model
    from srwork.modelfiles import save_model
    photos = tmp_path/'photos'; photos.mkdir()
    for n in ('chelsea.png', 'coffee.png'): shutil.copy(sample_images()/n, photos/n)
    model = save_model(create_model('edsr', 'small', 2), tmp_path/'mine.safetensors', scale=2)
    r = srwork('bench', '--no-reference', '--data', photos, '--model', model, '--picture', tmp_path/'side.png')
    assert r.returncode == 0, r.stderr
    lines = {l.split()[0] + (' ' + l.split()[1] if l.startswith('bicubic') else ''): l for l in r.stdout.splitlines() if l.strip()}
    assert {'input', 'bicubic x2', 'mine'} <= set(lines) and 'niqe: NIQE, no reference' in r.stdout and '(lower is better)' in r.stdout
    assert all(float(v) > 0 for v in lines['bicubic x2'].split()[2:])
    assert float(lines['bicubic x2'].split()[-1]) < 1 < float(lines['mine'].split()[-1])     # colour shift: bicubic keeps colours, an untrained model does not
    assert Image.open(tmp_path/'side.png').size[0] > 4 * 64
    for argv, msg in [(['bench', '--data', photos, '--model', model, '--picture', tmp_path/'x.png'], '--picture shows the outputs of a no-reference run: add --no-reference'),
                      (['bench', '--no-reference', '--data', photos], 'a no-reference benchmark judges models: give --model')]:
        r = srwork(*argv)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
