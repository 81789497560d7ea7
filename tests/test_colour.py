"`srwork upscale --check-colour`: a model that tints is caught (listed, exit code 1), a faithful one passes."
import torch, torch.nn as nn, torch.nn.functional as F

from srwork.core import sample_images, load_image
from srwork.upscaler import Upscaler
from srwork.inference import upscale_files
from srwork.cli import COMMANDS


class Scale2(nn.Module):
    def __init__(self, gains=(1., 1., 1.)):
        super().__init__(); self.gains = nn.Parameter(torch.tensor(gains).view(1, 3, 1, 1))
    def forward(self, x): return (F.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False) * self.gains).clamp(0, 1)


def test_a_tinting_model_is_caught_and_a_faithful_one_passes(tmp_path):
    photos = sample_images(tmp_path/'in')
    inputs = [photos/'chelsea.png', photos/'rocket.jpg']
    fair = upscale_files(inputs, Upscaler(Scale2(), 2), tmp_path/'fair', check_colour=True, quiet=True)
    tint = upscale_files(inputs, Upscaler(Scale2((1., .97, .9)), 2), tmp_path/'tint', check_colour=True, quiet=True)
    assert len(fair['done']) == 2 and fair['tinted'] == []
    assert [d.name for d, _ in tint['tinted']] == ['chelsea.png', 'rocket.jpg'] and all(s > 1 for _, s in tint['tinted'])
    assert all(load_image(d).shape[-1] == 2 * load_image(s).shape[-1] for s, d in zip(inputs, tint['done']))   # the outputs are still written
    exit_code = COMMANDS['upscale'].exit_code
    assert exit_code(tint) == 1 and exit_code(fair) == 0
