"The committed notebooks: pictures as their only outputs, where they draw pictures, and the whole of nbs/ small (the rules of `.ci/pictures.py`, which refreshes them)."
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('pictures', ROOT/'.ci'/'pictures.py')
pictures = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(pictures)
# notebooks whose point is partly a picture: the degradation grid, a batch, results, tile windows, schedules and curves,
# GAN curves, comparison panels, the demo's panel, the page's screenshot (needs Chromium when refreshed)
DRAWN = ['01_crappify', '02_data', '11_edsr', '12_esrgan', '13_unet', '14_schedules', '15_rundir', '17_training',
         '18_inference', '19_benchmark', '21_browser', '22_commands']


def _outputs(name):
    import json
    return [o for c in json.loads((pictures.NBS/f'{name}.ipynb').read_text())['cells'] for o in c.get('outputs', [])]


@pytest.mark.parametrize('name', sorted(p.stem for p in pictures.NBS.glob('*.ipynb')))
def test_outputs_are_pictures_only(name):
    assert not pictures.output_problems(pictures.NBS/f'{name}.ipynb')


@pytest.mark.parametrize('name', DRAWN)
def test_the_notebooks_that_draw_keep_their_pictures(name):
    assert _outputs(name), f"{name}.ipynb holds no picture: refresh with .ci/pictures.py {name}"


def test_the_notebooks_stay_small():
    assert pictures.LIMIT == 15 * 2**20 and pictures.nbs_size() < pictures.LIMIT
