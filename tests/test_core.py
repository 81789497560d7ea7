"Image I/O: every kind of bad file gives an error naming it; round trips keep mode and bit depth."
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from srwork.core import (ImageNotFoundError, ImageReadError, SRWorkError, atomic_write_bytes, load_image,
                         sample_images, save_image, SAMPLE_IMAGES)

RNG = np.random.RandomState(0)


def _png_bytes(a, mode=None):
    import io
    buf = io.BytesIO(); Image.fromarray(a, mode).save(buf, 'PNG'); return buf.getvalue()


# ---------------------------------------------------------------- bad files
def _bad_files(tmp: Path):
    good_png = _png_bytes(RNG.randint(0, 256, (64, 64, 3), dtype=np.uint8))
    import io
    buf = io.BytesIO(); Image.fromarray(RNG.randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, 'JPEG')
    good_jpg = buf.getvalue()
    files = {
        'missing.png': None,
        'empty.png': b'',
        'truncated.png': good_png[:len(good_png) // 2],
        'truncated.jpg': good_jpg[:len(good_jpg) // 2],
        'text.png': b'this is a text file, not a picture\n' * 10,
        'random.bin': bytes(RNG.randint(0, 256, 500, dtype=np.uint8)),
    }
    for name, data in files.items():
        if data is not None: (tmp / name).write_bytes(data)
    (tmp / 'folder.png').mkdir()
    return list(files) + ['folder.png']


@pytest.mark.parametrize('name,problem', [
    ('missing.png', 'no such file'), ('empty.png', 'empty file'), ('truncated.png', 'truncated or corrupt'),
    ('truncated.jpg', 'truncated or corrupt'), ('text.png', 'not a recognised image'),
    ('random.bin', 'not a recognised image'), ('folder.png', 'is a directory')])
def test_bad_file_errors_name_file_and_problem(tmp_path, name, problem):
    _bad_files(tmp_path)
    with pytest.raises(ImageReadError) as e:
        load_image(tmp_path / name)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / name)), msg
    assert problem in msg, msg
    assert isinstance(e.value, SRWorkError) and isinstance(e.value, OSError)


def test_missing_file_is_also_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / 'nope.jpg')
    with pytest.raises(ImageNotFoundError):
        load_image(tmp_path / 'nope.jpg')


def test_truncated_16bit_colour_png(tmp_path):
    a = RNG.randint(0, 65536, (40, 40, 3)).astype(np.uint16)
    ok, buf = cv2.imencode('.png', a)
    (tmp_path / 'cut16.png').write_bytes(buf.tobytes()[:len(buf) // 2])
    with pytest.raises(ImageReadError, match='cut16.png: truncated or corrupt'):
        load_image(tmp_path / 'cut16.png')


# ---------------------------------------------------------------- round trips
def _roundtrip(tmp, src_name, out_name=None):
    img = load_image(tmp / src_name)
    out = tmp / (out_name or ('out_' + src_name))
    save_image(img, out)
    return img, out


def test_rgb8_png_exact(tmp_path):
    a = RNG.randint(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / 'rgb.png')
    img, out = _roundtrip(tmp_path, 'rgb.png')
    assert img.dtype == torch.float32 and img.shape == (3, 17, 23)
    assert float(img.min()) >= 0 and float(img.max()) <= 1
    back = Image.open(out)
    assert back.mode == 'RGB'
    assert np.array_equal(np.asarray(back), a)


def test_rgba8_keeps_alpha(tmp_path):
    a = RNG.randint(0, 256, (17, 23, 4), dtype=np.uint8)
    Image.fromarray(a, 'RGBA').save(tmp_path / 'rgba.png')
    img, out = _roundtrip(tmp_path, 'rgba.png')
    assert img.shape == (3, 17, 23) and img.meta.alpha.shape == (1, 17, 23)
    back = Image.open(out)
    assert back.mode == 'RGBA' and np.array_equal(np.asarray(back), a)


@pytest.mark.parametrize('mode', ['L', 'LA'])
def test_grey8_keeps_mode(tmp_path, mode):
    a = RNG.randint(0, 256, (15, 9) if mode == 'L' else (15, 9, 2), dtype=np.uint8)
    Image.fromarray(a, mode).save(tmp_path / 'g.png')
    img, out = _roundtrip(tmp_path, 'g.png')
    assert img.shape == (3, 15, 9) and img.meta.grey
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    back = Image.open(out)
    assert back.mode == mode and np.array_equal(np.asarray(back), a)


def test_grey16_png_exact(tmp_path):
    a = RNG.randint(0, 65536, (13, 11)).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / 'g16.png')
    img, out = _roundtrip(tmp_path, 'g16.png')
    assert (img.meta.bits, img.meta.grey) == (16, True)
    # 16 bits survive the float32 tensor: values are distinct at 1/65535 resolution
    assert np.array_equal(np.round(img[0].double().numpy() * 65535).astype(np.uint16), a)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.ndim == 2 and np.array_equal(back, a)


@pytest.mark.parametrize('ext,channels', [('.png', 3), ('.png', 4), ('.tif', 3), ('.tif', 4)])
def test_colour16_exact(tmp_path, ext, channels):
    a = RNG.randint(0, 65536, (12, 14, channels)).astype(np.uint16)
    bgr = a[..., [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(tmp_path / f'c16{ext}'), bgr)
    img, out = _roundtrip(tmp_path, f'c16{ext}')
    assert (img.meta.bits, img.meta.grey, img.meta.has_alpha) == (16, False, channels == 4)
    assert np.array_equal(np.round(img.permute(1, 2, 0).double().numpy() * 65535).astype(np.uint16), a[..., :3])
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back, bgr)


def test_palette_keeps_palette(tmp_path):
    a = RNG.randint(0, 16, (20, 20), dtype=np.uint8)
    im = Image.fromarray(a, 'P')
    im.putpalette(list(RNG.randint(0, 256, 16 * 3, dtype=np.uint8)) + [0] * (256 - 16) * 3)
    im.save(tmp_path / 'p.png')
    img, out = _roundtrip(tmp_path, 'p.png')
    assert img.meta.mode == 'P' and not img.meta.grey
    back = Image.open(out)
    assert back.mode == 'P'
    assert np.array_equal(np.asarray(back.convert('RGB')), np.asarray(Image.open(tmp_path / 'p.png').convert('RGB')))


def test_one_bit(tmp_path):
    a = RNG.randint(0, 2, (16, 24)).astype(bool)
    Image.fromarray(a).save(tmp_path / 'b.png')
    img, out = _roundtrip(tmp_path, 'b.png')
    assert (img.meta.mode, img.meta.bits) == ('1', 1)
    back = Image.open(out)
    assert back.mode == '1' and np.array_equal(np.asarray(back), a)


@pytest.mark.parametrize('fmt,ext', [('WEBP', '.webp'), ('BMP', '.bmp'), ('TIFF', '.tif')])
def test_other_formats_exact(tmp_path, fmt, ext):
    a = RNG.randint(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / f'x{ext}', fmt, **({'lossless': True} if fmt == 'WEBP' else {}))
    img, out = _roundtrip(tmp_path, f'x{ext}')
    assert img.meta.format == fmt
    assert np.array_equal(np.asarray(Image.open(out).convert('RGB')), a)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_applied(tmp_path, orientation):
    a = RNG.randint(0, 256, (8, 12, 3), dtype=np.uint8)
    a[:4, :4] = 255  # an asymmetric mark
    im = Image.fromarray(a)
    exif = Image.Exif(); exif[0x0112] = orientation
    im.save(tmp_path / 'o.png', exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / 'o.png')))
    img = load_image(tmp_path / 'o.png')
    assert img.meta.orientation == orientation
    got = np.round(img.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize('orientation', [3, 5, 6, 8])
def test_exif_orientation_16bit_colour_matches_8bit_path(tmp_path, orientation):
    "The OpenCV path applies orientation the same way Pillow does."
    from srwork.core import _orient_array, _TRANSPOSE
    a = RNG.randint(0, 256, (5, 7, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(a).transpose(_TRANSPOSE[orientation]))
    assert np.array_equal(_orient_array(a, orientation), expected)


def test_jpeg_roundtrip_close(tmp_path):
    a = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    Image.fromarray(a).save(tmp_path / 'j.jpg', quality=100)
    img, out = _roundtrip(tmp_path, 'j.jpg')
    back = np.asarray(Image.open(out)).astype(int)
    assert Image.open(out).format == 'JPEG' and np.abs(back - a).max() <= 3


# ---------------------------------------------------------------- saving from tensors and arrays
def test_save_plain_tensor_and_arrays(tmp_path):
    t = torch.rand(3, 6, 5)
    save_image(t, tmp_path / 't.png')
    assert Image.open(tmp_path / 't.png').mode == 'RGB'
    save_image(torch.rand(4, 6, 5), tmp_path / 't4.png')
    assert Image.open(tmp_path / 't4.png').mode == 'RGBA'
    save_image(torch.rand(1, 6, 5), tmp_path / 't1.png')
    assert Image.open(tmp_path / 't1.png').mode == 'L'
    a16 = RNG.randint(0, 65536, (6, 5, 3)).astype(np.uint16)
    save_image(a16, tmp_path / 'a16.png')
    assert np.array_equal(cv2.imread(str(tmp_path / 'a16.png'), cv2.IMREAD_UNCHANGED)[..., ::-1], a16)


def test_upscaled_result_gets_resized_alpha(tmp_path):
    a = RNG.randint(0, 256, (10, 10, 4), dtype=np.uint8)
    Image.fromarray(a, 'RGBA').save(tmp_path / 'small.png')
    img = load_image(tmp_path / 'small.png')
    big = torch.nn.functional.interpolate(img[None].as_subclass(torch.Tensor), scale_factor=2)[0]
    save_image(big, tmp_path / 'big.png', like=img)
    back = Image.open(tmp_path / 'big.png')
    assert back.mode == 'RGBA' and back.size == (20, 20)


def test_16bit_to_jpeg_warns_and_writes_8bit(tmp_path):
    a = RNG.randint(0, 65536, (8, 8)).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / 'g16.png')
    with pytest.warns(UserWarning, match='16 bits'):
        save_image(load_image(tmp_path / 'g16.png'), tmp_path / 'g.jpg')
    assert Image.open(tmp_path / 'g.jpg').mode == 'L'


def test_unknown_extension(tmp_path):
    with pytest.raises(SRWorkError, match=r'out\.xyz: unknown image file extension'):
        save_image(torch.rand(3, 4, 4), tmp_path / 'out.xyz')
    assert not (tmp_path / 'out.xyz').exists()


# ---------------------------------------------------------------- atomicity and safety
def test_failed_encode_leaves_existing_file_untouched(tmp_path):
    target = tmp_path / 'result.jpg'
    target.write_bytes(b'previous result')
    with pytest.raises(SRWorkError, match='alpha'):
        save_image(torch.rand(4, 8, 8), target)
    assert target.read_bytes() == b'previous result'
    assert [p.name for p in tmp_path.iterdir()] == ['result.jpg']


def test_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / 'out.png'
    target.write_bytes(b'old')

    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError, match='disk full'):
        atomic_write_bytes(target, b'new')
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['out.png']


def test_refuses_to_overwrite_source(tmp_path):
    Image.fromarray(RNG.randint(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / 'in.png')
    before = (tmp_path / 'in.png').read_bytes()
    img = load_image(tmp_path / 'in.png')
    with pytest.raises(SRWorkError, match='refusing to overwrite'):
        save_image(img * 0.5, tmp_path / 'in.png')
    assert (tmp_path / 'in.png').read_bytes() == before
    save_image(img * 0.5, tmp_path / 'in.png', overwrite_source=True)
    assert (tmp_path / 'in.png').read_bytes() != before


def test_new_files_follow_umask(tmp_path):
    old = os.umask(0o022)
    try: save_image(torch.rand(3, 4, 4), tmp_path / 'perm.png')
    finally: os.umask(old)
    assert (tmp_path / 'perm.png').stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- sample set
def test_sample_images_offline(tmp_path):
    folder = sample_images(tmp_path / 's')
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(SAMPLE_IMAGES)
    for p in folder.iterdir():
        img = load_image(p)
        assert img.shape[0] == 3 and min(img.shape[1:]) >= 256, p
    # idempotent: a second call copies nothing new and keeps the files
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    sample_images(folder)
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_data_path_default_used_by_sample_images(tmp_path, monkeypatch):
    monkeypatch.setenv('SRWORK_DATA', str(tmp_path / 'root'))
    assert sample_images() == tmp_path / 'root' / 'samples'
    assert len(list((tmp_path / 'root' / 'samples').iterdir())) == len(SAMPLE_IMAGES)
