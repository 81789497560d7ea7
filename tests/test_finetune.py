"Fine-tuning a published Real-ESRGAN model (the realesrgan-finetune recipe): published-layout files load strictly, the losses are Real-ESRGAN's, the export upscales; paired LR data; bad files one line before training."
import math

import numpy as np
import pytest
import torch
from PIL import Image

import srwork.esrgan  # noqa: F401  (registers the architecture)
from srwork.core import SRWorkError
from srwork.esrgan import UNetDiscriminatorSN, GeneratorLoss
from srwork.models import create_model
from cli_runner import srwork_in_process as srwork


@pytest.fixture(scope='module')
def published(tmp_path_factory):
    "A generator and a discriminator saved as Real-ESRGAN publishes them (params_ema / params in a .pth), random weights; six HR photos and their x4 LR."
    d = tmp_path_factory.mktemp('published')
    torch.manual_seed(0)
    g = create_model('esrgan', 'small', 4)
    torch.save({'params_ema': g.state_dict()}, d/'RealESRGAN_x4plus.pth')
    D = UNetDiscriminatorSN(3, 64)
    torch.save({'params': D.state_dict()}, d/'RealESRGAN_x4plus_netD.pth')
    rng = np.random.default_rng(0)
    (d/'photos').mkdir(); (d/'lr').mkdir()
    for i in range(6):
        hr = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
        Image.fromarray(hr).save(d/'photos'/f'p{i}.png')
        Image.fromarray(hr).resize((24, 20), Image.BICUBIC).save(d/'lr'/f'p{i}.png')
    return d, g.state_dict(), D.state_dict()


def small_run(d, out, **kw):
    from srwork.training import train
    args = dict(recipe='realesrgan-finetune', init=d/'RealESRGAN_x4plus.pth', init_d=d/'RealESRGAN_x4plus_netD.pth', size='small', patch=32,
                bs=2, iters=2, pretrained=False, quiet=True)
    return train('esrgan', d/'photos', out, **{**args, **kw})


def test_fine_tuning_starts_from_both_published_files_with_realesrgans_losses(published, tmp_path, monkeypatch):
    import srwork.training as tr
    d, g_sd, d_sd = published
    seen = {}
    real_load = tr.load_discriminator
    def spy(learn, path):                                      # the discriminator as loaded, before any step
        D = real_load(learn, path); seen['D'] = {k: v.clone() for k, v in D.state_dict().items()}; return D
    monkeypatch.setattr(tr, 'load_discriminator', spy)
    res = small_run(d, tmp_path/'run')
    assert all(torch.equal(seen['D'][k], v) for k, v in d_sd.items()) and set(seen['D']) == set(d_sd)      # strict, exact
    learn = res['learn']
    loss = learn.loss_func
    assert isinstance(loss, GeneratorLoss) and isinstance(loss.discriminator, UNetDiscriminatorSN)
    assert loss.usm_target and loss.gan.kind == 'vanilla' and loss.gan.weight == pytest.approx(0.1) and loss.pixel_weight == 1.
    assert loss.perceptual.weights == [0.1, 0.1, 1., 1., 1.]                 # conv1_2, conv2_2, conv3_4, conv4_4, conv5_4
    assert [h['iter'] for h in learn.gan_trainer.history] == [0, 1]
    assert all(math.isfinite(h[k]) for h in learn.gan_trainer.history for k in ('g_loss', 'g_pixel', 'g_percep', 'g_gan', 'd_loss'))
    assert res['dls'].sr_config['crappifier'] == 'realesrgan'
    from srwork.inference import upscale
    out = upscale(res['safetensors'], torch.rand(3, 12, 16))
    assert tuple(out.shape[-2:]) == (48, 64) and torch.isfinite(out).all()


def test_fine_tuning_on_paired_photos(published, tmp_path):
    d, *_ = published
    res = small_run(d, tmp_path/'paired', lr_folder=d/'lr')
    assert res['dls'].sr_config['lr_folder'] == d/'lr'
    xb, yb = res['dls'].one_batch()
    assert tuple(xb.shape[-2:]) == (8, 8) and tuple(yb.shape[-2:]) == (32, 32)


def test_bad_files_are_one_line_before_training(published, tmp_path):
    d, *_ = published
    torch.save({'params': UNetDiscriminatorSN(3, 32).state_dict()}, tmp_path/'narrow_netD.pth')
    torch.save({'params_ema': create_model('esrgan', 'small', 2).state_dict()}, tmp_path/'x2.pth')
    (tmp_path/'lr_x2').mkdir()
    for p in sorted((d/'photos').glob('*.png')): Image.open(p).resize((48, 40)).save(tmp_path/'lr_x2'/p.name)
    base = ['train', '--arch', 'esrgan', '--recipe', 'realesrgan-finetune', '--data', d/'photos', '--size', 'small', '--patch', '32',
            '--bs', '2', '--iters', '2', '--no-pretrained', '-q']
    cases = [(['--init', d/'RealESRGAN_x4plus.pth', '--init-d', tmp_path/'narrow_netD.pth'],
              f"{tmp_path/'narrow_netD.pth'}: does not fit this run's UNetDiscriminatorSN (27 shapes differ, 0 missing, 0 unexpected: conv0.weight (32, 3, 3, 3) (the discriminator's: (64, 3, 3, 3))"),
             (['--init', tmp_path/'x2.pth', '--init-d', d/'RealESRGAN_x4plus_netD.pth'],
              f"{tmp_path/'x2.pth'}: does not fit esrgan (small, x4) exactly, as the realesrgan-finetune recipe needs: 1 tensors differ, e.g. conv_first.weight"),
             (['--init', d/'RealESRGAN_x4plus.pth', '--lr-folder', tmp_path/'lr_x2'], "is 96x80, which at x4 makes 24x20: is the LR folder for another scale?"),
             ([], "the realesrgan-finetune recipe fine-tunes a published model: give --init (RealESRGAN_x4plus.pth"),
             (['--init', d/'RealESRGAN_x4plus.pth', '--no-gan'], "the realesrgan-finetune recipe trains only the GAN phase: drop --no-gan")]
    for i, (extra, msg) in enumerate(cases):
        out = tmp_path/f'run{i}'
        r = srwork(*base, '-o', out, *extra)
        assert r.returncode == 1 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (msg, r.stderr)
        assert not (out/'checkpoints').exists() and not (out/'model.safetensors').exists()


def test_the_realesrnet_stage_trains_l1_against_the_sharpened_target(published, tmp_path):
    "--recipe realesrnet: the PSNR phase alone, L1 against the USM-sharpened GT, from the x4 model (strictly at x4; at x2 the tensors that fit, as Real-ESRGAN's x2plus starts)."
    from srwork.losses import SharpenedTargetLoss
    from srwork.training import train
    d, *_ = published
    args = dict(recipe='realesrnet', init=d/'RealESRGAN_x4plus.pth', size='small', patch=32, bs=2, iters=2, pretrained=False, quiet=True)
    res = train('esrgan', d/'photos', tmp_path/'x4', **args)
    assert isinstance(res['learn'].loss_func, SharpenedTargetLoss) and not hasattr(res['learn'], 'gan_trainer')
    res = train('esrgan', d/'photos', tmp_path/'x2', scale=2, **args)        # (conv_first differs at x2: not strict there)
    assert res['learn'].model.scale == 2
