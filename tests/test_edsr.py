"EDSR / MSRResNet: published parameter names load strictly and give the same output as an independent reference."
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from srwork.core import SRWorkError
from srwork.core import rgb_to_ycbcr
from srwork.edsr import EDSR, MSRResNet, YChannel, YL1Loss, edsr, edsr_learner, srresnet_learner
from srwork.modelfiles import init_from, load_pretrained
from srwork.schedules import TimeBudget, fit_budget


# ---------------------------------------------------------------- independent references
# Written from the papers' descriptions with BasicSR's public parameter names; no srwork code.
class RefBlock(nn.Module):
    def __init__(self, nf, res_scale):
        super().__init__()
        self.conv1, self.conv2, self.res_scale = nn.Conv2d(nf, nf, 3, padding=1), nn.Conv2d(nf, nf, 3, padding=1), res_scale

    def forward(self, x):
        return x + self.res_scale * self.conv2(torch.relu(self.conv1(x)))


class RefEDSR(nn.Module):
    "EDSR (Lim et al. 2017): subtract the DIV2K mean on the 0-255 range, head conv, B blocks, conv, skip, shuffle tail."
    def __init__(self, nf=16, nb=3, scale=2, res_scale=0.1):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3, nf, 3, padding=1)
        self.body = nn.ModuleList([RefBlock(nf, res_scale) for _ in range(nb)])
        self.conv_after_body = nn.Conv2d(nf, nf, 3, padding=1)
        if scale == 3: self.upsample = nn.ModuleDict({'0': nn.Conv2d(nf, 9 * nf, 3, padding=1)})
        else: self.upsample = nn.ModuleDict({str(2 * i): nn.Conv2d(nf, 4 * nf, 3, padding=1) for i in range(int(math.log2(scale)))})
        self.conv_last = nn.Conv2d(nf, 3, 3, padding=1)
        self.mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)

    def forward(self, x):
        h = self.conv_first((x - self.mean) * 255)
        r = h
        for b in self.body: r = b(r)
        h = self.conv_after_body(r) + h
        for k in sorted(self.upsample, key=int):
            h = F.pixel_shuffle(self.upsample[k](h), 3 if self.scale == 3 else 2)
        return self.conv_last(h) / 255 + self.mean


class RefMSRResNet(nn.Module):
    "BasicSR's MSRResNet: conv+lrelu(0.1), B blocks, (conv, shuffle, lrelu) x1 or x2, conv_hr+lrelu, conv_last, + bilinear(x)."
    def __init__(self, nf=16, nb=2, scale=4):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3, nf, 3, padding=1)
        self.body = nn.ModuleList([RefBlock(nf, 1.0) for _ in range(nb)])
        self.upconv1 = nn.Conv2d(nf, nf * (4 if scale == 4 else scale * scale), 3, padding=1)
        if scale == 4: self.upconv2 = nn.Conv2d(nf, nf * 4, 3, padding=1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, x):
        lrelu = lambda t: F.leaky_relu(t, 0.1)
        h = lrelu(self.conv_first(x))
        for b in self.body: h = b(h)
        r = 2 if self.scale == 4 else self.scale
        h = lrelu(F.pixel_shuffle(self.upconv1(h), r))
        if self.scale == 4: h = lrelu(F.pixel_shuffle(self.upconv2(h), 2))
        h = self.conv_last(lrelu(self.conv_hr(h)))
        return h + F.interpolate(x, scale_factor=self.scale, mode='bilinear', align_corners=False)


X = torch.rand(2, 3, 11, 13)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_edsr_loads_basicsr_file_strictly_and_matches(tmp_path, scale):
    torch.manual_seed(scale)
    ref = RefEDSR(16, 3, scale, 0.1).eval()
    torch.save({'params': ref.state_dict()}, tmp_path / 'edsr.pth')          # BasicSR's file layout
    ours = load_pretrained(EDSR(num_feat=16, num_block=3, scale=scale, res_scale=0.1), tmp_path / 'edsr.pth').eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X), ref(X), atol=1e-5, rtol=0)


def test_edsr_loads_official_edsr_pytorch_names(tmp_path):
    torch.manual_seed(0)
    ref = RefEDSR(16, 3, 4, 0.1).eval()
    sd = ref.state_dict()
    official = {}
    for k, v in sd.items():     # EDSR-PyTorch: head.0, body.N.body.{0,2}, body.<nb> (after-body conv), tail.0.K, tail.1
        k2 = (k.replace('conv_first.', 'head.0.').replace('conv_after_body.', 'body.3.').replace('upsample.', 'tail.0.')
              .replace('conv_last.', 'tail.1.').replace('.conv1.', '.body.0.').replace('.conv2.', '.body.2.'))
        official['module.' + k2] = v
    official['sub_mean.weight'] = torch.eye(3).view(3, 3, 1, 1)
    official['sub_mean.bias'] = torch.zeros(3)
    torch.save(official, tmp_path / 'official.pt')
    ours = load_pretrained(EDSR(num_feat=16, num_block=3, scale=4, res_scale=0.1), tmp_path / 'official.pt').eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X), ref(X), atol=1e-5, rtol=0)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_msrresnet_loads_strictly_and_matches(tmp_path, scale):
    torch.manual_seed(10 + scale)
    ref = RefMSRResNet(16, 2, scale).eval()
    torch.save({'params_ema': ref.state_dict(), 'params': {}}, tmp_path / 'srresnet.pth')
    ours = load_pretrained(MSRResNet(num_feat=16, num_block=2, scale=scale), tmp_path / 'srresnet.pth').eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(X), ref(X), atol=1e-5, rtol=0)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_published_files_load_without_building_the_model_first(tmp_path, scale):
    "`load_model` (what `srwork upscale -m X.pth` runs) finds architecture, size and scale from the tensors alone."
    from srwork.inference import load_model
    torch.manual_seed(20 + scale)
    ref = RefEDSR(16, 3, scale, 1.).eval()
    torch.save({'params': ref.state_dict()}, tmp_path/'edsr.pth')
    up = load_model(tmp_path/'edsr.pth')
    assert up.scale == scale and up.model.config['num_block'] == 3
    ref2 = RefMSRResNet(16, 2, scale).eval()
    torch.save({'params_ema': ref2.state_dict(), 'params': {}}, tmp_path/'srresnet.pth')
    up2 = load_model(tmp_path/'srresnet.pth')
    assert up2.model.config['arch'] == 'srresnet' and up2.scale == scale
    with torch.no_grad():
        torch.testing.assert_close(up(X), ref(X), atol=1e-5, rtol=0)
        torch.testing.assert_close(up2(X), ref2(X), atol=1e-5, rtol=0)


def test_load_errors_name_the_file(tmp_path):
    torch.save({'params': RefEDSR(16, 3, 2).state_dict()}, tmp_path / 'x2.pth')
    with pytest.raises(SRWorkError, match=r'x2\.pth: weights do not fit EDSR'):
        load_pretrained(EDSR(num_feat=16, num_block=4, scale=2), tmp_path / 'x2.pth')
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(SRWorkError, match=r'junk\.pth: not a readable PyTorch weight file'):
        load_pretrained(edsr(), tmp_path / 'junk.pth')
    with pytest.raises(SRWorkError, match='weight file not found'):
        load_pretrained(edsr(), tmp_path / 'none.pth')


def test_x4_initialised_from_x2_file(tmp_path):
    x2 = EDSR(num_feat=16, num_block=3, scale=2)
    torch.save(x2.state_dict(), tmp_path / 'x2.pth')
    x4 = EDSR(num_feat=16, num_block=3, scale=4)
    copied = init_from(x4, tmp_path / 'x2.pth')
    assert 'body.2.conv2.weight' in copied and 'upsample.2.weight' not in copied
    torch.testing.assert_close(x4.body[2].conv2.weight, x2.body[2].conv2.weight)


# ---------------------------------------------------------------- learners
@pytest.fixture
def dls(tmp_path):
    from srwork.data import sr_dataloaders
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:64, 0:64] / 6.
    for i in range(4):
        img = np.stack([np.sin(xx * rng.uniform(.3, 1) + yy * rng.uniform(.3, 1) + c) for c in range(3)], 2)
        Image.fromarray(((img + 1) * 127.5).astype(np.uint8)).save(tmp_path / f'{i}.png')
    return sr_dataloaders(tmp_path, scale=2, patch_size=32, bs=2, valid_pct=0.25)


def test_few_steps_lower_the_loss_on_a_fixed_batch(dls):
    torch.manual_seed(0)
    learn = edsr_learner(dls, 2, num_feat=16, num_block=2)
    xb, yb = dls.one_batch()
    learn.model.to(dls.device)                  # fit would do this; the loop below calls the model directly
    learn.create_opt()
    learn.opt.set_hyper('lr', 1e-3)
    losses = []
    for _ in range(15):
        loss = learn.loss_func(learn.model(xb), yb)
        loss.backward(); learn.opt.step(); learn.opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]
    betas = learn.opt.hypers[0]
    assert betas['mom'] == 0.9 and betas['sqr_mom'] == 0.99


def test_learner_checks_input_mode_and_scale(dls, tmp_path):
    from srwork.data import dls_at
    with pytest.raises(SRWorkError, match='model x4'):
        edsr_learner(dls, 4)
    up = dls_at(dls, 32, 4, upsample_input=True)
    with pytest.raises(SRWorkError, match='upsample_input=False'):
        srresnet_learner(up, 2)


def test_time_budget_stops_the_fit(dls):
    from srwork.data import dls_at
    learn = edsr_learner(dls, 2, num_feat=8, num_block=1, metrics=[])
    with learn.no_bar(), learn.no_logging():
        tb = fit_budget(learn, 0.03, 1e-3)
    assert tb.iters > 0 and 1.5 < tb.elapsed < 10
    # loaders with no complete training batch would loop over empty epochs forever: refused instead
    empty = edsr_learner(dls_at(dls, 32, 4), 2, num_feat=8, num_block=1, metrics=[])   # 3 training images, batch 4
    with pytest.raises(SRWorkError, match='no training batches'):
        with empty.no_bar(), empty.no_logging(): fit_budget(empty, 0.03, 1e-3)


def test_y_channel_model_keeps_bicubic_chroma():
    net = EDSR(1, 1, 8, 1, 2, rgb_mean=(0.44,))
    m = YChannel(net, 2).eval()
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        out = rgb_to_ycbcr(m(x))
        chroma = F.interpolate(rgb_to_ycbcr(x)[:, 1:], scale_factor=2, mode='bicubic', align_corners=False)
        torch.testing.assert_close(out[:, 1:], chroma, atol=1e-5, rtol=0)
        torch.testing.assert_close(out[:, :1], net(rgb_to_ycbcr(x)[:, :1]), atol=1e-5, rtol=0)
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert float(YL1Loss()(a, b)) == pytest.approx(float((rgb_to_ycbcr(a) - rgb_to_ycbcr(b))[:, 0].abs().mean()), abs=1e-6)
