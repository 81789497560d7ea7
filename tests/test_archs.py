"""Every registered architecture at its small size, the way a user meets it: built from the registry, trained a few
iterations through its learner, saved with `save_model`, reloaded through srwork and opened by spandrel (the loader of
chaiNNer and ComfyUI), with the same outputs. One test per architecture, sharing one set of sample photos."""
import json, math

import pytest
import torch
from fastai.callback.core import Callback, CancelFitException

import srwork.archs  # noqa: F401  (registers every architecture)
from srwork.core import sample_images, SRWorkError, set_seed
from srwork.models import ARCHS, create_model, make_learner
from srwork.data import sr_dataloaders
from srwork.upscaler import Upscaler
from srwork.callbacks import speed_callbacks, GeneratorEMA
from srwork.modelfiles import save_model, load_model, load_weights, init_from, init_mismatches, read_state_dict

NAMES = list(ARCHS)
ITERS = 8


def small_size(spec): return 'small' if 'small' in spec.sizes else spec.default_size
def scale_for(spec): return 1 if spec.scales == (1,) else 2 if spec.scales is None or 2 in spec.scales else spec.scales[0]


class _OneBatch(Callback):
    "Train on one fixed batch: whether the model can fit a batch is what a few iterations can show."
    def __init__(self, xb, yb): self.fixed = (xb,), (yb,)
    def before_batch(self):
        if self.training: self.learn.xb, self.learn.yb = self.fixed


class _StopAfter(Callback):
    "End the fit after `n` training iterations."
    order = 99
    def __init__(self, n): self.n = n
    def after_batch(self):
        if self.training and self.iter + 1 >= self.n: raise CancelFitException


@pytest.fixture(scope='module')
def photos(tmp_path_factory): return sample_images(tmp_path_factory.mktemp('photos'))


def _input(spec, name):
    "A non-square LR input every architecture takes: sides multiples of its input multiple, above its minimum."
    m = math.lcm(spec.input_multiple, 8)
    side = max(32, m)
    return torch.rand(1, 3, side, side if name == 'uformer' else side + m, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize('name', NAMES)
def test_trains_saves_and_opens_in_spandrel(name, photos, tmp_path):
    spec = ARCHS[name]
    size, scale = small_size(spec), scale_for(spec)
    set_seed(0)         # (python's random too: it places the crops, and whichever tests ran before in this worker moved it)
    model = create_model(name, size, scale, **({'pretrained': False} if name == 'unet' else {}))
    patch = max(16, math.lcm(spec.input_multiple, 8)) * scale
    dls = sr_dataloaders(photos, scale, patch, bs=2, crappifier='restoration' if scale == 1 else 'bicubic', valid_pct=0.2,
                         upsample_input=spec.upsample_input, normalize=spec.normalize, num_workers=0, seed=0, patches_per_epoch=2 * ITERS)
    learn = make_learner(spec, dls, model, scale, spec.phases[0], pretrained=False)
    # half the registered rate over a one-cycle whose warm-up is half the fit (a peak at the 3rd of 8 steps made EDSR-Y's
    # 2e-3 overshoot the batch in one run of two); the U-Net's 1e-3 assumes an ImageNet encoder, and offline both the encoder
    # and the feature loss's VGG are random, which spikes at that rate (measured: 2 of 3 seeds), 1e-4 falls in all three
    lr = 1e-4 if name == 'unet' else spec.lr / 2
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, lr, pct_start=0.5, cbs=[_OneBatch(*dls.train.one_batch())])   # ITERS iterations
    losses = [float(l) for l in learn.recorder.losses]          # (fastai's smoothed training loss; the first is the first batch's)
    assert len(losses) == ITERS and losses[-1] < losses[0], f"{name}: the training loss did not fall in {ITERS} iterations: {losses}"
    # the speed options and the EMA that `srwork train` and the cpu recipe use: bf16 autocast, channels-last, an EMA of the weights
    ema = GeneratorEMA(0.999)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr / 10, cbs=speed_callbacks(True, 'bf16') + [ema, _OneBatch(*dls.train.one_batch()), _StopAfter(2)])
    assert ema.updates == 2 and all(math.isfinite(float(l)) for l in learn.recorder.losses), f"{name}: bf16 training: {learn.recorder.losses}"
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())

    up = Upscaler.from_any(learn)
    x = _input(spec, name)
    with torch.no_grad(): ref = up(x.clone()).float()
    f = save_model(learn, tmp_path/f'{name}.safetensors')
    with torch.no_grad(): again = load_model(f)(x.clone()).float()
    assert (again - ref).abs().max() < 1e-5, f"{name}: srwork's reload differs by {(again - ref).abs().max():.2e}"

    import spandrel
    if spec.spandrel_id:
        desc = spandrel.ModelLoader().load_from_file(f)
        assert (desc.architecture.id, desc.scale) == (spec.spandrel_id, scale)
        with torch.no_grad(): theirs = desc(x.clone()).float()          # (the descriptor clamps to [0, 1])
        assert (theirs - ref.clamp(0, 1)).abs().max() < 1e-4, f"{name}: spandrel's output differs by {(theirs - ref.clamp(0, 1)).abs().max():.2e}"
    else:
        assert spec.spandrel_note, f"{name}: spandrel can't open its files, and the registration does not say why"
        with pytest.raises(spandrel.UnsupportedModelError): spandrel.ModelLoader().load_from_file(f)


@pytest.mark.parametrize('name', [n for n in NAMES if ARCHS[n].spandrel_id and ARCHS[n].to_spandrel is None])
def test_published_files_load_as_registered_models(name, tmp_path):
    "A release's .pth (BasicSR's params_ema layout, the architecture's own names) is recognised as the registered architecture, config and all."
    spec = ARCHS[name]
    scale = scale_for(spec)
    torch.manual_seed(1)
    model = create_model(name, small_size(spec), scale).eval()
    torch.save({'params_ema': model.state_dict()}, tmp_path/'release.pth')
    up = load_weights(tmp_path/'release.pth')
    assert up.model.config['arch'] == name and up.scale == scale
    x = _input(spec, name)
    with torch.no_grad(): assert (up(x.clone()) - Upscaler.from_any(model)(x.clone())).abs().max() < 1e-5


def test_init_from_a_published_file_lists_what_it_leaves_new(tmp_path):
    "--init of an x2 release into an x4 model: everything but the upsampler copied, strictly where shapes match, the rest named."
    x2, x4 = create_model('span', 'small', 2), create_model('span', 'small', 4)
    torch.save({'params_ema': x2.state_dict()}, tmp_path/'span_x2.pth')
    copied, new = init_from(x4, tmp_path/'span_x2.pth'), init_mismatches(x4, tmp_path/'span_x2.pth')
    assert len(copied) + len(new) == len(x4.state_dict()) and len(new) > 0
    assert all('upsampler' in n for n in new), new
    for k in copied: assert torch.equal(x4.state_dict()[k], x2.state_dict()[k])


def test_an_edsr_file_is_an_rcan_for_spandrel_and_an_edsr_for_srwork(tmp_path):
    from srwork.edsr import edsr
    import spandrel
    m = edsr('small', 4, res_scale=0.1).eval()
    f = save_model(m, tmp_path/'edsr.safetensors')
    assert set(read_state_dict(f)) == set(m.state_dict())              # --init and load_pretrained see EDSR's own names
    own = save_model(m, tmp_path/'own.safetensors', layout='srwork')
    with pytest.raises(spandrel.UnsupportedModelError): spandrel.ModelLoader().load_from_file(own)
    with pytest.raises(SRWorkError, match="layout 'onnx': use 'spandrel' or 'srwork'"): save_model(m, tmp_path/'x.safetensors', layout='onnx')
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad(): assert (load_model(own)(x) - load_model(f)(x)).abs().max() < 1e-6


@pytest.mark.parametrize('name', ['span', 'compact', 'realplksr'])
def test_gan_phase_of_a_generator_architecture(name, photos, tmp_path):
    "Asked for (`gan=True`), a PSNR phase then ESRGAN's GAN phase with this architecture as the generator; its file opens in spandrel."
    from srwork.training import train
    import spandrel
    r = train(name, photos, tmp_path/'run', scale=2, size='small', gan=True, iters=2, patch=32, bs=2, pretrained=False, quiet=True)
    state = json.loads((tmp_path/'run'/'train_state.json').read_text())
    assert state['done'] == ['psnr', 'gan'] and (tmp_path/'run'/'gan_curves.png').is_file()
    assert type(r['learn'].model).__name__ == type(create_model(name, 'small', 2)).__name__     # the generator is the architecture
    desc = spandrel.ModelLoader().load_from_file(tmp_path/'run'/'model.safetensors')
    assert desc.architecture.id == ARCHS[name].spandrel_id


def test_generator_architectures_train_their_psnr_phase_alone_unless_asked():
    from srwork.config import TrainConfig
    assert TrainConfig('span', scale=2).resolve().phases == ('psnr',)
    assert TrainConfig('span', scale=2, gan=True).resolve().phases == ('psnr', 'gan')
    assert TrainConfig('esrgan', scale=4).resolve().phases == ('psnr', 'gan')
    with pytest.raises(SRWorkError, match='hat has no GAN phase'): TrainConfig('hat', scale=2, gan=True).resolve()


@pytest.mark.parametrize('name', ['grl', 'realcugan', 'uformer', 'atd'])
def test_an_architecture_without_a_free_shape_graph_says_why_in_one_line(name, tmp_path):
    "Their code fixes sizes while tracing: the dynamic export is refused with the registered reason; a fixed-size graph works where the exporter has every op."
    from srwork.inference import export_onnx
    spec = ARCHS[name]
    model = create_model(name, small_size(spec), scale_for(spec)).eval()
    with pytest.raises(SRWorkError) as e: export_onnx(model, tmp_path/'free.onnx')
    assert spec.export_note in str(e.value) and '\n' not in str(e.value) and not (tmp_path/'free.onnx').exists()
    if name == 'atd':
        with pytest.raises(SRWorkError, match="can't export this ATD.*aten.sort") as e: export_onnx(model, tmp_path/'fixed.onnx', dynamic=False)
        assert '\n' not in str(e.value) and not (tmp_path/'fixed.onnx').exists()
    else: assert export_onnx(model, tmp_path/'fixed.onnx', dynamic=False).is_file()    # checked against PyTorch at its size
