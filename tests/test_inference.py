"Inference: tiled == whole image, modes and bit depths, batch CLI with bad files, pickle-free reload, ONNX."
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from srwork.core import SRWorkError, load_image, save_image
from srwork.edsr import EDSR, MSRResNet, YChannel
from srwork.upscaler import Upscaler, receptive_field
from srwork.modelfiles import save_model
from srwork.inference import export_onnx, load_model, onnx_max_diff, onnx_session, quantize_onnx, upscale, upscale_tensor

torch.manual_seed(0)
MODELS = {
    'edsr_x2': lambda: EDSR(num_feat=16, num_block=3, scale=2),
    'edsr_x3': lambda: EDSR(num_feat=16, num_block=2, scale=3, res_scale=0.1),
    'msrresnet_x4': lambda: MSRResNet(num_feat=16, num_block=2, scale=4),
    'edsr_y_skip_x2': lambda: YChannel(EDSR(1, 1, 16, 2, 2, rgb_mean=(0.44,), upsample_skip=True), 2),
}


@pytest.mark.parametrize('name', list(MODELS))
def test_tiled_equals_whole_image(name):
    m = MODELS[name]().eval()
    up = Upscaler.from_any(m)
    x = torch.rand(1, 3, 53, 71)                  # not a multiple of the tile in either direction
    whole = upscale_tensor(up, x, tile=None)
    rf = receptive_field(m)
    for tile, bs in [(16, 1), (24, 5)]:
        tiled = upscale_tensor(up, x, tile=tile, tile_pad=rf, batch_size=bs)
        assert tiled.shape == whole.shape
        assert float((tiled - whole).abs().max()) <= 1e-5


def test_small_pad_shows_seams_so_the_check_is_real():
    m = MODELS['edsr_x2']().eval()
    up = Upscaler.from_any(m)
    x = torch.rand(1, 3, 40, 40)
    whole = upscale_tensor(up, x, tile=None)
    assert float((upscale_tensor(up, x, tile=10, tile_pad=1) - whole).abs().max()) > 1e-3


def test_receptive_field_of_edsr_matches_its_architecture():
    # 3x3 convs at LR resolution: head, 2 per block, after-body, first upsampling conv; plus conv_last at HR (< 1 LR px)
    for nb in (2, 5):
        rf = receptive_field(EDSR(num_feat=8, num_block=nb, scale=2))
        assert 2 * nb + 3 <= rf <= 2 * nb + 4, (nb, rf)


def test_memory_bounded_by_tiles():
    "The model never sees more than batch_size windows of tile + 2*pad pixels, whatever the image size."
    m = MODELS['edsr_x2']().eval()
    seen = []
    m.conv_first.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)) if inp[0].device.type != 'meta' else None)
    upscale_tensor(Upscaler.from_any(m), torch.rand(1, 3, 300, 420), tile=64, tile_pad=10, batch_size=2)   # (meta passes: shapes only, no memory)
    assert max(s[0] for s in seen) <= 2 and max(max(s[2:]) for s in seen) <= 64 + 2 * 10


def test_feather_blend_close_to_whole():
    m = MODELS['edsr_x2']().eval()
    up = Upscaler.from_any(m)
    x = torch.rand(1, 3, 50, 50)
    whole = upscale_tensor(up, x, tile=None)
    rf = receptive_field(m)
    f = upscale_tensor(up, x, tile=16, tile_pad=2 * rf, blend='feather')      # outer half of the pad: no weight
    assert float((f - whole).abs().max()) <= 1e-5
    g = upscale_tensor(up, x, tile=16, tile_pad=rf, blend='feather')          # blends pixels that lack context
    assert 1e-5 < float((g - whole).abs().max()) < 0.5


# ---------------------------------------------------------------- modes and bit depths
@pytest.fixture
def model():
    return MODELS['edsr_x2']().eval()


@pytest.mark.parametrize('mode', ['RGB', 'RGBA', 'L', 'LA', 'I;16', 'RGB16'])
def test_file_round_trip_keeps_mode_and_depth(tmp_path, model, mode):
    import cv2
    rng = np.random.RandomState(0)
    if mode == 'I;16': Image.fromarray(rng.randint(0, 65536, (21, 17)).astype(np.uint16)).save(tmp_path / 'in.png')
    elif mode == 'RGB16': cv2.imwrite(str(tmp_path / 'in.png'), rng.randint(0, 65536, (21, 17, 3)).astype(np.uint16))
    else:
        ch = {'RGB': 3, 'RGBA': 4, 'L': 1, 'LA': 2}[mode]
        a = rng.randint(0, 256, (21, 17, ch), dtype=np.uint8)
        Image.fromarray(a if ch > 1 else a[..., 0], mode).save(tmp_path / 'in.png')
    res = upscale(model, tmp_path / 'in.png', tile=8)
    save_image(res, tmp_path / 'out.png')
    src, out = load_image(tmp_path / 'in.png'), load_image(tmp_path / 'out.png')
    assert (out.meta.mode, out.meta.bits, out.meta.has_alpha) == (src.meta.mode, src.meta.bits, src.meta.has_alpha)
    assert out.shape[-2:] == (42, 34)
    if src.meta.has_alpha:   # alpha is upscaled on its own (bicubic): close to the source's alpha, enlarged
        from srwork.crappify import imresize
        exp = imresize(src.meta.alpha[None], 2).clamp(0, 1)[0]
        assert float((out.meta.alpha - exp).abs().max()) <= 1 / 255 + 1e-6


def test_kinds_in_kinds_out(model):
    a8 = np.random.RandomState(1).randint(0, 256, (9, 11, 3), dtype=np.uint8)
    assert upscale(model, a8).dtype == np.uint8 and upscale(model, a8).shape == (18, 22, 3)
    assert upscale(model, a8[..., 0]).shape == (18, 22)
    assert upscale(model, Image.fromarray(a8)).size == (22, 18)
    t = torch.rand(3, 9, 11)
    assert upscale(model, t).shape == (3, 18, 22)
    assert upscale(model, torch.rand(2, 3, 9, 11)).shape == (2, 3, 18, 22)


def test_low_precision_falls_back_to_fp32():
    class FragileInHalf(torch.nn.Module):
        upscale = 2
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))
        def forward(self, x):
            y = torch.nn.functional.interpolate(x, scale_factor=2) * self.w
            return y * float('nan') if torch.is_autocast_enabled(x.device.type) else y
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        out = upscale(FragileInHalf(), torch.rand(3, 8, 8), dtype=torch.bfloat16, device='cpu')
    assert torch.isfinite(out).all() and any('redoing this batch in fp32' in str(x.message) for x in w)


# ---------------------------------------------------------------- model files
def test_safetensors_reload_in_fresh_process(tmp_path, model):
    save_model(model, tmp_path / 'm.safetensors')
    x = torch.rand(1, 3, 13, 19)
    torch.save(x, tmp_path / 'x.pt')
    with torch.no_grad(): torch.save(Upscaler.from_any(model)(x), tmp_path / 'ref.pt')
    code = textwrap.dedent(f"""
        import torch
        from srwork.inference import load_model
        up = load_model(r'{tmp_path / 'm.safetensors'}')
        with torch.no_grad(): out = up(torch.load(r'{tmp_path / 'x.pt'}'))
        ref = torch.load(r'{tmp_path / 'ref.pt'}')
        print(float((out - ref).abs().max()))
    """)
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.strip().splitlines()[-1]) == 0.0


def test_upscaling_imports_the_unet_only_for_a_unet(tmp_path, model):
    "The U-Net registers lazily: upscaling an EDSR file never imports it (nor torchvision: 1.6 s of startup), a U-Net file does."
    from srwork.models import create_model
    import srwork.unet
    save_model(model, tmp_path/'edsr.safetensors')
    save_model(create_model('unet', 'small', 2, pretrained=False), tmp_path/'unet.safetensors', scale=2)
    save_image(torch.rand(3, 16, 16), tmp_path/'in.png')
    code = textwrap.dedent(f"""
        import sys
        from srwork.inference import upscale_file
        upscale_file(r'{tmp_path/'edsr.safetensors'}', r'{tmp_path/'in.png'}', r'{tmp_path/'a.png'}')
        print(sorted(m for m in ('srwork.unet', 'torchvision', 'fastai.vision.learner') if m in sys.modules))
        upscale_file(r'{tmp_path/'unet.safetensors'}', r'{tmp_path/'in.png'}', r'{tmp_path/'b.png'}')
        print('srwork.unet' in sys.modules)
    """)
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['[]', 'True'], r.stdout
    assert Image.open(tmp_path/'b.png').size == (32, 32)


def test_loading_skips_initialisers_and_gives_them_back(tmp_path, model):
    "load_model builds without running torch.nn.init (every weight is loaded next): the same outputs, and the initialisers are torch's again after, a failed build too."
    from srwork.modelfiles import _INITIALISERS, model_from_config
    before = {n: getattr(torch.nn.init, n) for n in _INITIALISERS}
    save_model(model, tmp_path/'m.safetensors')
    x = torch.rand(1, 3, 12, 17)
    with torch.no_grad(): assert torch.equal(load_model(tmp_path/'m.safetensors')(x), Upscaler.from_any(model)(x))
    with pytest.raises(SRWorkError, match='config'): model_from_config({'arch': 'edsr', 'num_feat': 'many'}, {}, 'bad.safetensors')
    assert {n: getattr(torch.nn.init, n) for n in _INITIALISERS} == before
    w = torch.zeros(4, 4); torch.nn.init.normal_(w); assert w.abs().sum() > 0      # (and they initialise again)


def test_safetensors_has_no_pickle_and_bad_files_are_named(tmp_path, model):
    p = save_model(model, tmp_path / 'm.safetensors')
    assert b'srwork' in p.read_bytes()[:4096] and b'\x80\x04' not in p.read_bytes()[:16]   # JSON header, not a pickle
    (tmp_path / 'bad.safetensors').write_bytes(b'garbage')
    with pytest.raises(SRWorkError, match=r'bad\.safetensors: not a readable safetensors file'):
        load_model(tmp_path / 'bad.safetensors')
    with pytest.raises(SRWorkError, match=r'm\.h5: unsupported model file'):
        (tmp_path / 'm.h5').write_bytes(b'x'); load_model(tmp_path / 'm.h5')
    with pytest.raises(SRWorkError, match=r'm\.pth: not a readable PyTorch weight file'):
        (tmp_path / 'm.pth').write_bytes(b'x'); load_model(tmp_path / 'm.pth')


def test_exported_learner_loads_as_upscaler(tmp_path):
    from srwork.data import sr_dataloaders
    from srwork.edsr import edsr_learner
    for i in range(3):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f'{i}.png')
    learn = edsr_learner(sr_dataloaders(tmp_path, scale=2, patch_size=16, bs=2), 2, num_feat=8, num_block=1)
    learn.export(tmp_path / 'edsr.pkl')
    with pytest.raises(SRWorkError, match=r'edsr\.pkl: a \.pkl model is a pickle.*`trust=True`'): load_model(tmp_path / 'edsr.pkl')
    up = load_model(tmp_path / 'edsr.pkl', trust=True)
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad(): torch.testing.assert_close(up(x), learn.model.eval()(x).as_subclass(torch.Tensor))
    save_model(learn, tmp_path / 'edsr.safetensors')
    assert load_model(tmp_path / 'edsr.safetensors').scale == 2


# ---------------------------------------------------------------- ONNX
def test_onnx_matches_pytorch_on_two_sizes(tmp_path):
    m = MODELS['msrresnet_x4']().eval()
    path = export_onnx(m, tmp_path / 'm.onnx')        # raises if > 1e-4 at two sizes
    up = Upscaler.from_any(m)
    assert onnx_max_diff(path, up, (29, 41)) <= 1e-4 and onnx_max_diff(path, up, (64, 16)) <= 1e-4
    q = quantize_onnx(path, tmp_path / 'm.int8.onnx', 'int8')
    assert q.stat().st_size < path.stat().st_size
    assert onnx_max_diff(q, up, (20, 20)) < 0.2           # runs, same shape, roughly the same image
    with torch.no_grad(): out = up(torch.rand(2, 3, 12, 10))
    assert onnx_session(path).run(None, {'lr': np.random.rand(2, 3, 12, 10).astype(np.float32)})[0].shape == out.shape  # dynamic batch


def test_onnx_of_a_model_with_an_input_multiple(tmp_path):
    "RRDBNet x2 pixel-unshuffles its input: the graph takes multiples of 2, onnx_upscaler pads any size to them."
    from srwork.esrgan import RRDBNet
    from srwork.inference import onnx_upscaler
    torch.manual_seed(0)
    up = Upscaler.from_any(RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4)).eval()
    path = export_onnx(up, tmp_path / 'x2.onnx')
    x = torch.rand(3, 23, 31)                              # odd sides
    with torch.no_grad(): ref = up(x[None])[0].clamp(0, 1)
    got = onnx_upscaler(path)(x)
    assert got.shape == ref.shape and float((got - ref).abs().max()) < 1e-5
    for mode in ('int8-dynamic', 'fp16'): assert onnx_upscaler(quantize_onnx(path, tmp_path / f'x2.{mode}.onnx', mode))(x).shape == ref.shape


# ---------------------------------------------------------------- the CLI
def _cli(*args):
    from cli_runner import srwork_in_process
    return srwork_in_process(*args)


def test_cli_batch_with_a_corrupt_file(tmp_path, model):
    src = tmp_path / 'in'
    (src / 'sub').mkdir(parents=True)
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 256, (12, 15, 3), dtype=np.uint8)).save(src / 'a.png')
    Image.fromarray(rng.randint(0, 256, (12, 15, 4), dtype=np.uint8), 'RGBA').save(src / 'sub' / 'b.png')
    (src / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 30)
    save_model(model, tmp_path / 'm.safetensors')
    r = _cli('upscale', src, '-m', tmp_path / 'm.safetensors', '-o', tmp_path / 'out', '--tile', '8')
    assert r.returncode == 1
    assert str(src / 'broken.png') in r.stderr and r.stderr.count('srwork: error:') == 1
    assert Image.open(tmp_path / 'out' / 'a.png').size == (30, 24)
    assert Image.open(tmp_path / 'out' / 'sub' / 'b.png').mode == 'RGBA'
    assert not (tmp_path / 'out' / 'broken.png').exists()
    assert '2 upscaled, 1 failed' in r.stdout


def test_cli_never_overwrites_inputs(tmp_path, model):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'a.png')
    before = (tmp_path / 'a.png').read_bytes()
    save_model(model, tmp_path / 'm.safetensors')
    r = _cli('upscale', tmp_path / 'a.png', '-m', tmp_path / 'm.safetensors', '-o', tmp_path)
    assert r.returncode == 1 and 'refusing to overwrite the input' in r.stderr
    assert (tmp_path / 'a.png').read_bytes() == before
    r = _cli('upscale', tmp_path / 'a.png', '-m', tmp_path / 'm.safetensors', '-o', tmp_path, '--suffix', '_x2')
    assert r.returncode == 0 and Image.open(tmp_path / 'a_x2.png').size == (16, 16)
    assert (tmp_path / 'a.png').read_bytes() == before


def test_cli_missing_model_and_inputs(tmp_path):
    r = _cli('upscale', tmp_path / 'nothing*.png', '-m', tmp_path / 'm.safetensors', '-o', tmp_path / 'o')
    assert r.returncode == 1 and 'no such file, folder or matching files' in r.stderr


# ---------------------------------------------------------------- context probes at published sizes
def test_probes_of_an_x4plus_size_rrdbnet_fit_in_a_few_gb(tmp_path):
    "Back-propagating through growing probes needed tens of GB on this network; the forward-only probes fit under a 6 GB cap."
    code = ("import resource, torch; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); torch.manual_seed(0)\n"
            "from srwork.models import create_model; from srwork.upscaler import Upscaler, receptive_field, effective_pad; import srwork.esrgan\n"
            "up = Upscaler.from_any(create_model('esrgan', scale=4)); rf = receptive_field(up); print(rf, effective_pad(up, rf))")
    r = __import__('subprocess').run([__import__('sys').executable, '-c', code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rf, pad = map(int, r.stdout.split())
    assert 0 < pad <= rf


def test_default_pad_equals_whole_image_after_8_bit_rounding():
    from srwork.core import quantise
    from srwork.models import create_model
    from srwork.upscaler import _probe_strip
    torch.manual_seed(0)
    up = Upscaler.from_any(create_model('edsr', scale=2))              # EDSR baseline: receptive field 36 px
    rf, pad = up.context()
    assert rf == receptive_field(up) and pad < rf                     # not exact: cheaper
    x = _probe_strip(300, 300)[..., 40:140, 60:190]
    whole, tiled = quantise(upscale_tensor(up, x, tile=None)), quantise(upscale_tensor(up, x, tile=32))
    assert (whole - tiled).abs().max() <= 1 and (whole == tiled).float().mean() >= 0.999
    assert (quantise(upscale_tensor(up, x, tile=32, tile_pad=max(pad - 6, 0))) - whole).abs().max() > 1   # less is not enough


def test_a_saved_model_keeps_its_context_and_never_probes_again(tmp_path, monkeypatch):
    import srwork.upscaler
    m = MODELS['edsr_x2']().eval()
    f = save_model(m, tmp_path/'m.safetensors')
    up = load_model(f)
    assert (up._rf, up.tile_pad) == Upscaler.from_any(m).context()
    def no_probe(*a, **k): raise AssertionError('probed again')
    monkeypatch.setattr(srwork.upscaler, 'receptive_field', no_probe); monkeypatch.setattr(srwork.upscaler, 'effective_pad', no_probe)
    assert upscale_tensor(up, torch.rand(1, 3, 40, 40), tile=16).shape == (1, 3, 80, 80)


def test_onnx_without_the_extra_names_it(tmp_path, monkeypatch):
    import sys
    from srwork.edsr import edsr
    from srwork.inference import export_onnx, onnx_session
    for mod in ('onnx', 'onnxruntime'): monkeypatch.setitem(sys.modules, mod, None)      # as if not installed
    with pytest.raises(SRWorkError, match=r"onnx is not installed: .* pip install 'srwork\[onnx\]'"):
        export_onnx(edsr('small', 2), tmp_path/'m.onnx')
    with pytest.raises(SRWorkError, match=r"onnxruntime is not installed: .* pip install 'srwork\[onnx\]'"):
        onnx_session(tmp_path/'m.onnx')
