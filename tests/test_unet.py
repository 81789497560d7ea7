"U-Net learner, FeatureLoss, progressive schedules, discriminative learning rates and lean export."
import json, subprocess, sys, textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from srwork.core import SRWorkError, sample_images, set_seed, load_image, save_image
from srwork.data import sr_dataloaders, dls_at
from srwork.models import n_params
from srwork.upscaler import Upscaler
from srwork.modelfiles import save_model, export_generator
from srwork.losses import FeatureLoss, vgg_features, gram_matrix
from srwork.benchmark import bicubic_lr
from srwork.schedules import Stage, fit_progressive, progressive_state, group_lrs, trainable_groups
from srwork.unet import sr_unet, sr_unet_learner, icnr_error
from srwork.inference import load_model
from fastai.callback.core import Callback


@pytest.fixture(scope='module')
def samples(tmp_path_factory):
    return sample_images(tmp_path_factory.mktemp('samples'))


def small_learner(samples, path, patch=32, bs=2, **kw):
    set_seed(0)
    dls = sr_dataloaders(samples, scale=2, patch_size=patch, bs=bs, upsample_input=True, normalize=True,
                         valid_pct=0.25, valid_size=32, num_workers=0)
    return sr_unet_learner(dls, 'resnet18', pretrained=False, path=path, **kw)


def test_feature_loss_matches_direct_formula_with_pre_activation():
    torch.manual_seed(1)
    feats = vgg_features('vgg16_bn', pretrained=False)
    loss = FeatureLoss(pre_activation=True, layer_wgts=(20., 70., 10.), features=feats)
    assert loss.vgg.layer_ids == [21, 31, 41]              # the BN outputs just before the ReLUs before each pool
    a, b = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    def acts(x):
        x, out = (x - mean) / std, []
        for i, layer in enumerate(feats[:42]):
            x = torch.relu(x) if isinstance(layer, nn.ReLU) else layer(x)
            if i in (21, 31, 41): out.append(x.clone())
        return out
    def gram(f): n, c, h, w = f.shape; f = f.reshape(n, c, -1); return f @ f.transpose(1, 2) / (c * h * w)
    fa, fb = acts(a), acts(b)
    parts = [F.l1_loss(a, b)] + [w * F.l1_loss(x, y) for x, y, w in zip(fa, fb, (20., 70., 10.))] \
        + [w * w * 5e3 * F.l1_loss(gram(x), gram(y)) for x, y, w in zip(fa, fb, (20., 70., 10.))]
    total = loss(a, b)
    torch.testing.assert_close(total, sum(parts), rtol=1e-5, atol=1e-5)
    for name, p in zip(loss.metric_names, parts): torch.testing.assert_close(getattr(loss, name), p, rtol=1e-5, atol=1e-6)


def test_gram_matrix_float32_under_half():
    x = torch.randn(2, 4, 8, 8).half()
    g = gram_matrix(x)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, torch.einsum('nchw,ndhw->ncd', x.float(), x.float()) / (4 * 64))


def test_offline_pretrained_errors_name_file_folder_and_way_out():
    with mock.patch('torch.hub.load_state_dict_from_url', side_effect=OSError('offline')):
        with pytest.raises(SRWorkError, match=r'resnet34-\w+\.pth is not in .*checkpoints.*pretrained=False'):
            sr_unet('resnet34', pretrained=True)
        with pytest.raises(SRWorkError, match=r'vgg16_bn-\w+\.pth is not in .*pretrained=False'):
            FeatureLoss(pretrained=True)


def test_unet_needs_upsampled_inputs(samples):
    dls = sr_dataloaders(samples, scale=2, patch_size=32, bs=2, valid_pct=0.25, num_workers=0)
    with pytest.raises(SRWorkError, match='upsample_input=True'): sr_unet_learner(dls, 'resnet18', pretrained=False)


def test_normalisation_added_and_kept_by_dls_at(samples, tmp_path):
    dls = sr_dataloaders(samples, scale=2, patch_size=32, bs=2, upsample_input=True, valid_pct=0.25, num_workers=0)
    learn = sr_unet_learner(dls, 'resnet18', pretrained=False, path=tmp_path)
    from srwork.data import norm_stats
    assert len(norm_stats(learn.dls)) == 1 and len(norm_stats(dls_at(learn.dls, 64, 2))) == 1


def test_few_steps_lower_the_loss_on_a_fixed_batch(samples, tmp_path):
    learn = small_learner(samples, tmp_path)
    xb, yb = learn.dls.one_batch()
    learn.model.to(learn.dls.device)            # fit would do this; the loop below calls the model directly
    opt = torch.optim.Adam(learn.model.parameters(), lr=1e-4)   # (1e-3 spikes this untrained BatchNorm U-Net on a batch of 2: 4.9 -> 44 -> 28.5)
    learn.model.train()
    losses = []
    for _ in range(6):
        loss = learn.loss_func(learn.model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] * 0.9, losses


class GroupLRs(Callback):
    "Per-group learning rates at every training batch."
    def before_fit(self): self.lrs = []
    def after_batch(self):
        if self.training: self.lrs.append([h['lr'] for h in self.opt.hypers])


def test_discriminative_lrs_read_from_the_optimizer(samples, tmp_path):
    learn = small_learner(samples, tmp_path)
    assert len(learn.splitter(learn.model)) == 3
    learn.freeze()
    assert trainable_groups(learn) == [False, False, True]
    learn.unfreeze()
    assert trainable_groups(learn) == [True, True, True]
    rec = GroupLRs()
    learn.fit(1, slice(1e-6, 1e-4), cbs=rec)            # constant lr: fastai's `fit` applies the slice as is
    for lrs in rec.lrs: assert lrs == pytest.approx([1e-6, 1e-5, 1e-4])
    assert group_lrs(learn) == pytest.approx([1e-6, 1e-5, 1e-4])
    assert group_lrs(learn, slice(1e-3)) == pytest.approx([1e-4, 1e-4, 1e-3])


class Snap(Callback):
    "Weights and input size at the start and end of each fit."
    order = 100
    def __init__(self): self.events = []
    def before_fit(self): self.events.append(('start', self.sd()))
    def before_batch(self):
        if self.training and self.events[-1][0] == 'start' and len(self.events[-1]) == 2: self.events[-1] += (tuple(self.xb[0].shape[-2:]),)
    def after_fit(self): self.events.append(('end', self.sd()))
    def sd(self): return {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}


def test_progressive_stages_keep_weights_and_resume(samples, tmp_path):
    learn = small_learner(samples, tmp_path)
    n0 = n_params(learn.model)
    snap = Snap()
    stages = [Stage(32, 2, 1, 1e-4, frozen=True), Stage(64, 2, 1, slice(1e-6, 1e-4))]
    fit_progressive(learn, stages, name='t', cbs=[snap])
    (s0, w0, size0), (e0, w1), (s1, w2, size1), (e1, w3) = snap.events
    assert (size0, size1) == ((32, 32), (64, 64))
    assert n_params(learn.model) == n0
    for k in w1: assert torch.equal(w1[k], w2[k]), k       # stage 2 starts exactly where stage 1 ended
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)  # and stage 1 did train
    state = progressive_state(learn, 't')
    assert state['completed'] == 2 and state['checkpoints'] == ['t_stage0', 't_stage1']
    assert (tmp_path/'models'/'t_stage1.pth').is_file()

    # a crash in stage 2: a fresh learner resumes from stage 1's checkpoint and runs stage 2 only
    state['completed'] = 1
    (tmp_path/'models'/'t_state.json').write_text(json.dumps(state))
    learn2 = small_learner(samples, tmp_path)
    snap2 = Snap()
    fit_progressive(learn2, stages, name='t', cbs=[snap2])
    assert len(snap2.events) == 2 and snap2.events[0][2] == (64, 64)
    ck = torch.load(tmp_path/'models'/'t_stage0.pth', weights_only=False)['model']
    for k in ck: assert torch.equal(snap2.events[0][1][k], ck[k].cpu()), k

    with pytest.raises(SRWorkError, match='differs'):
        fit_progressive(learn2, [Stage(48, 2, 1, 1e-4)] + stages[1:], name='t')


PREDICT = textwrap.dedent('''
    import sys, torch
    from pathlib import Path
    from fastai.learner import load_learner
    learn = load_learner(sys.argv[1], cpu=True)
    assert type(learn.loss_func).__name__ != 'FeatureLoss'
    out = learn.predict(Path(sys.argv[2]))[0]
    torch.save(torch.as_tensor(out).as_subclass(torch.Tensor).clone(), sys.argv[3])
''')


def test_export_is_lean_and_reloads_in_a_fresh_process(samples, tmp_path):
    learn = small_learner(samples, tmp_path)
    learn.fit(1, 1e-4)
    path = export_generator(learn, 'unet.pkl')
    bare = sum(v.numel() * v.element_size() for v in learn.model.state_dict().values())
    size = path.stat().st_size
    print(f"export {size / 2**20:.1f} MiB vs bare state dict {bare / 2**20:.1f} MiB")
    assert size < bare * 1.05                                 # no VGG (56 MiB here), no duplicate weight-norm weights
    assert isinstance(learn.loss_func, FeatureLoss)           # the learner itself is untouched
    lr_file = tmp_path/'lr.png'
    save_image(bicubic_lr(load_image(samples/'chelsea.png')[:, :64, :96], 2)[1], lr_file)
    expected = learn.predict(lr_file)[0].as_subclass(torch.Tensor)
    out = tmp_path/'pred.pt'
    subprocess.run([sys.executable, '-c', PREDICT, str(path), str(lr_file), str(out)], check=True, cwd=tmp_path)
    got = torch.load(out)
    assert got.shape == (3, 64, 96)
    assert (got - expected).abs().max() <= 1e-5


def test_unet_safetensors_roundtrip_matches_learner(samples, tmp_path):
    learn = small_learner(samples, tmp_path)
    f = save_model(learn, tmp_path/'unet.safetensors')
    up, ref = load_model(f), Upscaler.from_any(learn)
    assert up.upsample_input and up.scale == 2
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad(): torch.testing.assert_close(up(x), ref(x), rtol=0, atol=1e-5)


def test_unet_exports_to_onnx_with_the_bicubic_in_the_graph(samples, tmp_path):
    "The graph takes the LR image: MATLAB-bicubic enlargement as convolutions, ImageNet normalisation, the network with weight norm folded."
    from srwork.inference import export_onnx, onnx_upscaler, _onnx_meta
    learn = small_learner(samples, tmp_path)
    path = export_onnx(learn, tmp_path/'unet.onnx')        # raises if onnxruntime and PyTorch differ by > 1e-4 at two sizes
    assert _onnx_meta(path)['input_multiple'] == '16'       # x2 into a /32 encoder
    x = torch.rand(3, 48, 80)
    with torch.no_grad(): ref = Upscaler.from_any(learn)(x[None])[0].clamp(0, 1)
    got = onnx_upscaler(path)(x)
    assert got.shape == (3, 96, 160) and float((got - ref).abs().max()) <= 1e-4
    assert sum(hasattr(m, 'weight_g') for m in learn.model.modules()) > 0     # the learner's own model is left as it was
    learn.fit(1, 1e-4)                                                          # and still trains
