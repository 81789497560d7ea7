"ESRGAN/SRGAN: published weight layouts, GAN steps, losses, checkpoints, interpolation, export and tiling."
import torch
import torch.nn as nn
import torch.nn.functional as F
import pytest

from srwork.core import SRWorkError, sample_images, set_seed
from srwork.data import sr_dataloaders
from srwork.upscaler import Upscaler
from srwork.modelfiles import load_pretrained, save_model, export_generator
from srwork.esrgan import (RRDBNet, SRGANGenerator, VGGStyleDiscriminator, UNetDiscriminatorSN, AdversarialTrainer,
                           esrgan_learner, srgan_learner, interpolate)
from srwork.losses import AdversarialLoss
from srwork.rundir import EpochCheckpoint, resume_checkpoint
from srwork.callbacks import GeneratorEMA
from srwork.inference import upscale_tensor, load_model
from fastai.callback.core import Callback

SMALL = dict(num_feat=16, num_block=2, num_grow_ch=8)


# ---- an independent RRDBNet, written from the ESRGAN paper / release, with the original release's names ----
class RefRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1); self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1); self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RefRRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = RefRDB(nf, gc), RefRDB(nf, gc), RefRDB(nf, gc)
    def forward(self, x): return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class RefESRGAN(nn.Module):
    "x4 generator with the original ESRGAN release's parameter names."
    def __init__(self, nf, nb, gc):
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[RefRRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1); self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1); self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
    def forward(self, x):
        f = self.conv_first(x)
        f = f + self.trunk_conv(self.RRDB_trunk(f))
        f = F.leaky_relu(self.upconv1(F.interpolate(f, scale_factor=2, mode='nearest')), 0.2)
        f = F.leaky_relu(self.upconv2(F.interpolate(f, scale_factor=2, mode='nearest')), 0.2)
        return self.conv_last(F.leaky_relu(self.HRconv(f), 0.2))


def _randomise(m):
    torch.manual_seed(3)
    with torch.no_grad():
        for p in m.parameters(): p.normal_(0, 0.05)
    return m


def test_original_esrgan_release_loads_strictly_and_matches(tmp_path):
    ref = _randomise(RefESRGAN(16, 2, 8)).eval()
    torch.save(ref.state_dict(), tmp_path/'RRDB_ESRGAN_x4.pth')
    ours = load_pretrained(RRDBNet(scale=4, **SMALL), tmp_path/'RRDB_ESRGAN_x4.pth').eval()
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad(): torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)


def test_original_esrgan_release_loads_as_a_model_file(tmp_path):
    from srwork.inference import load_model
    ref = _randomise(RefESRGAN(16, 2, 8)).eval()
    torch.save(ref.state_dict(), tmp_path/'RRDB_ESRGAN_x4.pth')
    up = load_model(tmp_path/'RRDB_ESRGAN_x4.pth')
    assert (up.scale, up.model.config['num_block'], up.model.config['num_grow_ch']) == (4, 2, 8)
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad(): torch.testing.assert_close(up(x), ref(x), rtol=0, atol=1e-6)


def test_basicsr_realesrgan_layout_loads_strictly(tmp_path):
    "Real-ESRGAN/BasicSR files: BasicSR names under 'params_ema'; x2 pixel-unshuffles the input (12 input channels)."
    ref = _randomise(RefESRGAN(16, 2, 8)).eval()
    sd = {k.replace('RRDB_trunk', 'body').replace('.RDB', '.rdb').replace('trunk_conv', 'conv_body')
          .replace('upconv', 'conv_up').replace('HRconv', 'conv_hr'): v for k, v in ref.state_dict().items()}
    torch.save({'params_ema': sd}, tmp_path/'x4.pth')
    ours = load_pretrained(RRDBNet(scale=4, **SMALL), tmp_path/'x4.pth').eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad(): torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    x2 = RRDBNet(scale=2, **SMALL)
    assert x2.conv_first.in_channels == 12
    sd2 = dict(sd, **{'conv_first.weight': torch.randn(16, 12, 3, 3)})
    torch.save({'params_ema': sd2}, tmp_path/'x2.pth')
    load_pretrained(x2, tmp_path/'x2.pth')
    with pytest.raises(SRWorkError, match='do not fit'): load_pretrained(RRDBNet(scale=4, **SMALL), tmp_path/'x2.pth')


def test_relativistic_loss_formula_and_sides():
    real = torch.tensor([1.5, -0.3, 0.7, 2.0]); fake = torch.tensor([0.1, -1.2, 0.4, -0.5], requires_grad=True)
    loss = AdversarialLoss('ragan')
    s = torch.sigmoid
    d = -(torch.log(s(real - fake.mean())).mean() + torch.log(1 - s(fake - real.mean())).mean()) / 2
    g = -(torch.log(1 - s(real - fake.mean())).mean() + torch.log(s(fake - real.mean())).mean()) / 2
    torch.testing.assert_close(loss.d_loss(real, fake), d)
    torch.testing.assert_close(loss.g_loss(fake, real), g)
    r = real.clone().requires_grad_(True)
    AdversarialLoss('ragan').g_loss(fake, r).backward()
    assert r.grad is None and fake.grad.abs().sum() > 0            # G's side never trains D through the real logits
    with pytest.raises(SRWorkError, match='real images'): loss.g_loss(fake)
    with pytest.raises(SRWorkError, match='unknown GAN loss'): AdversarialLoss('wgan')


@pytest.fixture(scope='module')
def dls(tmp_path_factory):
    set_seed(0)
    return sr_dataloaders(sample_images(tmp_path_factory.mktemp('s')), scale=4, patch_size=64, bs=2, valid_pct=0.25,
                          valid_size=64, num_workers=0)


def gan(dls, path, **kw):
    set_seed(0)
    return esrgan_learner(dls, 4, 'gan', pretrained=False, path=path, **SMALL, **kw)


class PhaseCheck(Callback):
    "Snapshots G and D before the batch, after G's step (before AdversarialTrainer's D step) and after the batch."
    order = AdversarialTrainer.order - 1
    def __init__(self): self.snaps = []
    def _s(self):     # parameters: what the optimizers update (BN running stats move in any train-mode forward)
        return ({k: v.detach().clone() for k, v in self.learn.model.named_parameters()},
                {k: v.detach().clone() for k, v in self.learn.loss_func.discriminator.named_parameters()})
    def before_batch(self):
        if self.training: self.snaps.append([self._s()])
    def after_step(self): self.snaps[-1].append(self._s())
    def after_batch(self):
        if self.training: self.snaps[-1].append(self._s()); raise __import__('fastai').callback.core.CancelFitException()


def _changed(a, b): return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_one_gan_step_updates_each_network_in_its_phase(dls, tmp_path):
    learn = gan(dls, tmp_path, ema=None)
    pc = PhaseCheck()
    learn.fit(1, 1e-3, cbs=pc)
    (g0, d0), (g1, d1), (g2, d2) = pc.snaps[0]
    assert _changed(g0, g1) and not _changed(d0, d1)             # G's step: only G moves
    assert not _changed(g1, g2) and _changed(d1, d2)             # D's step: only D moves
    h = learn.gan_trainer.history[0]
    assert all(torch.isfinite(torch.tensor(v)) for v in h.values()), h
    assert 0 < h['d_real'] < 1 and 0 < h['d_fake'] < 1


@pytest.mark.parametrize('kind', AdversarialLoss.kinds)
def test_all_gan_losses_train_finite(dls, tmp_path, kind):
    learn = gan(dls, tmp_path, gan_type=kind, discriminator='unet', ema=0.9)
    learn.fit(1, 1e-4)
    hist = learn.gan_trainer.history
    assert len(hist) == len(dls.train)
    for h in hist: assert all(torch.isfinite(torch.tensor(v)) for v in h.values()), (kind, h)
    assert all(torch.isfinite(torch.tensor(v)) for v in learn.recorder.values[-1][:2])


def test_srgan_learner_steps_and_uses_its_recipe(dls, tmp_path):
    set_seed(0)
    learn = srgan_learner(dls, 4, 'gan', pretrained=False, num_feat=16, num_block=2, path=tmp_path)
    assert learn.loss_func.gan.kind == 'vanilla' and learn.loss_func.gan.weight == 1e-3 and learn.loss_func.pixel_weight == 0
    assert type(learn.loss_func.discriminator).__name__ == 'SRGANDiscriminator'
    learn.fit(1, 1e-4)
    assert len(learn.gan_trainer.history) == len(dls.train)


def test_gan_checkpoint_restores_critic_optimizer_and_ema(dls, tmp_path):
    learn = gan(dls, tmp_path)
    learn.fit(1, 1e-4, cbs=EpochCheckpoint(tmp_path/'gan.pth'))
    fresh = gan(dls, tmp_path)
    assert resume_checkpoint(fresh, tmp_path/'gan.pth') == 1
    for k, v in learn.loss_func.discriminator.state_dict().items():
        assert torch.equal(fresh.loss_func.discriminator.state_dict()[k], v), k
    saved = torch.load(tmp_path/'gan.pth', weights_only=False)['model']   # before the EMA was copied in at the end of fit
    for k, v in saved.items(): assert torch.equal(fresh.model.state_dict()[k], v), k
    assert fresh.gan_trainer.d_opt.state_dict()['state'].keys() == learn.gan_trainer.d_opt.state_dict()['state'].keys()
    ema_a, ema_b = (next(cb for cb in l.cbs if isinstance(cb, GeneratorEMA)).ema for l in (learn, fresh))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    assert len(fresh.gan_trainer.history) == len(learn.gan_trainer.history)


def test_gan_export_holds_only_the_generator(dls, tmp_path):
    from fastai.learner import load_learner
    learn = gan(dls, tmp_path)
    f = export_generator(learn, 'g.pkl')
    bare = sum(v.numel() * v.element_size() for v in learn.model.state_dict().values())
    assert f.stat().st_size < bare + 300_000                   # D alone is far bigger than the generator here
    loaded = load_learner(f, cpu=True)
    assert isinstance(loaded.model, RRDBNet) and not any(isinstance(cb, AdversarialTrainer) for cb in loaded.cbs)


@pytest.mark.parametrize('make', [lambda: RRDBNet(scale=4, **SMALL), lambda: RRDBNet(scale=2, **SMALL),
                                  lambda: SRGANGenerator(num_feat=16, num_block=2, scale=4).eval()])
def test_tiled_equals_whole_and_safetensors_roundtrip(make, tmp_path):
    torch.manual_seed(0)
    model = make().eval()
    up = Upscaler.from_any(model)
    x = torch.rand(1, 3, 61, 181)                               # odd sizes: RRDBNet x2 pads to its grid
    with torch.no_grad(): whole = up(x).clamp(0, 1)
    tiled = upscale_tensor(up, x, tile=24, tile_pad='exact')               # the whole receptive field: equal up to float rounding
    assert tiled.shape == whole.shape == (1, 3, 61 * up.scale, 181 * up.scale)
    assert len(__import__('srwork.inference', fromlist=['x']).tile_windows(182, 24, up._rf, up.multiple)) > 1   # really tiled
    assert (tiled - whole).abs().max() <= 1e-5
    back = load_model(save_model(model, tmp_path/'m.safetensors'))
    with torch.no_grad(): assert (back(x) - up(x)).abs().max() == 0


# ---- fastai's own tools on a GAN learner: save/load, SaveModelCallback, lr_find ----
def _gan_state(learn):
    "Copies of everything a GAN learner trains: G, D, both optimizers' states, the EMA and the D history."
    ema = next(cb for cb in learn.cbs if isinstance(cb, GeneratorEMA)).ema
    t = learn.gan_trainer
    return dict(G={k: v.clone() for k, v in learn.model.state_dict().items()},
                D={k: v.clone() for k, v in t.D.state_dict().items()},
                d_opt={i: {k: v.clone() for k, v in s.items()} for i, s in t.d_opt.state_dict()['state'].items()},
                ema=None if ema is None else {k: v.clone() for k, v in ema.items()}, history=len(t.history))

def _same(a, b) -> bool:
    if isinstance(a, dict): return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_learn_save_and_load_keep_the_discriminator_its_optimizer_and_the_ema(dls, tmp_path):
    learn = gan(dls, tmp_path)
    learn.fit(1, 1e-4)
    saved = _gan_state(learn)
    f = learn.save('g')
    learn.fit(1, 1e-3)                                         # everything moves on
    assert not _same(_gan_state(learn)['D'], saved['D'])
    learn.load('g')
    assert _same(_gan_state(learn), saved)
    fresh = gan(dls, tmp_path)                                 # and into a new learner, before any fit
    fresh.load('g')
    assert _same(_gan_state(fresh), saved) and not any(p.name.endswith('.tmp') for p in f.parent.iterdir())


def test_save_model_callback_restores_the_best_epoch_with_its_discriminator(dls, tmp_path):
    from fastai.callback.tracker import SaveModelCallback
    class Record(Callback):
        order = SaveModelCallback.order + 1
        def before_fit(self): self.states = []
        def after_epoch(self): self.states.append(_gan_state(self.learn))
    learn = gan(dls, tmp_path)
    rec = Record()
    learn.fit(3, 1e-4, cbs=[SaveModelCallback(monitor='valid_loss', fname='best'), rec])
    best = int(torch.tensor([v[1] for v in learn.recorder.values]).argmin())
    after = _gan_state(learn)                                  # SaveModelCallback loaded the best epoch at the end
    assert _same(after['D'], rec.states[best]['D']) and _same(after['ema'], rec.states[best]['ema'])
    assert _same(after['d_opt'], rec.states[best]['d_opt'])


def test_lr_find_trains_nothing_and_restores_everything(dls, tmp_path):
    learn = gan(dls, tmp_path)
    learn.fit(1, 1e-4)
    before = _gan_state(learn)
    class Watch(Callback):                                      # D, its optimizer and the EMA during the search
        order = 99
        def before_fit(self): self.seen = []
        def after_batch(self): self.seen.append(_gan_state(self.learn))
    w = Watch()
    with learn.added_cbs(w): res = learn.lr_find(num_it=6, show_plot=False, stop_div=False)
    assert res.valley > 0 and len(w.seen) >= 5                 # it ran: G stepped at growing rates ...
    assert not _same(w.seen[-1]['G'], before['G'])
    assert all(_same({k: s[k] for k in ('D', 'd_opt', 'ema', 'history')}, {k: before[k] for k in ('D', 'd_opt', 'ema', 'history')})
               for s in w.seen)                                 # ... against a D that stood still, with no EMA update
    assert _same(_gan_state(learn), before)
    assert not (tmp_path/'models'/'_tmp.pth').exists()


def test_old_checkpoints_keep_their_discriminator(dls, tmp_path):
    "srwork 0.1 stored the trainer's state under the class's former name, GANTrainer."
    learn = gan(dls, tmp_path)
    learn.fit(1, 1e-4, cbs=EpochCheckpoint(tmp_path/'ck.pth'))
    state = torch.load(tmp_path/'ck.pth', weights_only=False)
    state['extra']['GANTrainer'] = state['extra'].pop('AdversarialTrainer')
    torch.save(state, tmp_path/'old.pth')
    fresh = gan(dls, tmp_path)
    resume_checkpoint(fresh, tmp_path/'old.pth')
    assert _same(_gan_state(fresh)['D'], {k: v for k, v in state['extra']['GANTrainer']['discriminator'].items()})
