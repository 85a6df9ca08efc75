"""Preprocessing: what people send becomes what MNIST looks like, and the model reads it right."""

import io
import random

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy import ndimage

from app.core.preprocess import ImageError, NoDigitError, components, decode, ink, preprocess, to_png
from tests.drawing import camera, cut_out, draw, encode, on_desk, photo, scan, sheet

WHITE, BLACK = (255, 255, 255, 255), (0, 0, 0, 255)


def assert_mnist_like(field: np.ndarray) -> None:
    """Ink fits a 20 px box (touching it on the longer side) and its centre of mass is central."""
    assert field.shape == (28, 28) and field.dtype == np.float32
    assert 0 <= field.min() and field.max() <= 1 and field.max() > 0.9
    rows, cols = np.flatnonzero(field.max(1) > 0.05), np.flatnonzero(field.max(0) > 0.05)
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(height, width) <= 20 and max(height, width) >= 18, (height, width)
    cy, cx = ndimage.center_of_mass(field)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1, (cy, cx)


@pytest.fixture(scope="module")
def classify(app):
    classifier = app.extensions["digitpad.classifier"]
    return lambda data: int(classifier.probabilities(preprocess(data)[None])[0].argmax())


def rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def cut_out_jpeg(digit: int, quality: int, **drawing) -> bytes:
    """`digit` drawn as `drawing` says, cut out around its ink as a script cuts it out of a scan, as JPEG."""
    return encode(rgb(cut_out(draw(digit, **drawing))), "JPEG", quality=quality)


GREY_SCAN = {"paper": (238, 238, 238, 255), "ink": (50, 50, 50, 255)}


CASES = {
    "transparent canvas": lambda d: encode(draw(d)),
    "white ink on transparent (dark-mode canvas)": lambda d: encode(draw(d, ink=WHITE)),
    "black on white": lambda d: encode(draw(d, paper=WHITE)),
    "white on black": lambda d: encode(draw(d, paper=BLACK, ink=WHITE)),
    "blue ink on yellow paper": lambda d: encode(draw(d, paper=(250, 230, 120, 255), ink=(30, 60, 200, 255))),
    "yellow on dark blue": lambda d: encode(draw(d, paper=(20, 30, 90, 255), ink=(255, 220, 0, 255))),
    "off-centre in a corner": lambda d: encode(draw(d, canvas=(600, 400), box=(470, 270, 110), brush=9)),
    # Cut out of a scan around the ink, which runs into every edge: the border is paper only in part.
    "cut out around the ink": lambda d: encode(cut_out(draw(d, paper=WHITE))),
    "cut out around the ink, white on black JPEG": lambda d: cut_out_jpeg(d, 90, paper=BLACK, ink=WHITE),
    "cut out around the ink, blue on yellow": lambda d: encode(cut_out(draw(d, paper=(250, 230, 120, 255),
                                                                             ink=(30, 60, 200, 255)))),
    # A fat marker's strokes, cut out tight, are most of the picture: its border is still the paper.
    "cut out around a fat marker's ink": lambda d: encode(cut_out(draw(d, brush=40, paper=WHITE))),
    "cut out around a fat marker's ink, blue on yellow": lambda d: encode(cut_out(draw(
        d, brush=46, paper=(250, 230, 120, 255), ink=(30, 60, 200, 255)))),
    # Cut out of a grey scan and saved as JPEG, no part of the border is one colour: paper crossed by ink.
    "cut out around the ink of a grey scan, JPEG": lambda d: cut_out_jpeg(
        d, 80, canvas=(200, 200), box=(60, 60, 80), brush=10, **GREY_SCAN),
    # And a fat marker's, whose ink is most of the picture: its paper still shows between the strokes.
    "cut out around a fat marker's ink of a grey scan, JPEG": lambda d: cut_out_jpeg(
        d, 80, canvas=(200, 200), box=(60, 60, 80), brush=28, **GREY_SCAN),
    # Cut out tiny, JPEG and anti-aliasing leave its border neither paper nor crossed: too small for a photo.
    "cut out around the ink of a grey scan, tiny JPEG": lambda d: cut_out_jpeg(
        d, 75, canvas=(100, 100), box=(30, 30, 24), brush=3.5, **GREY_SCAN),
    # Coloured, JPEG smears the ink's colour into the paper around it; its brightness stays sharp.
    "cut out around the ink, blue on yellow JPEG": lambda d: cut_out_jpeg(
        d, 90, canvas=(200, 200), box=(60, 60, 80), brush=14, paper=(250, 230, 120, 255), ink=(30, 60, 200, 255)),
    # Red on yellow: JPEG's smear beside each stroke that crosses the border is the ink's fringe,
    # not paper lit unevenly.
    "cut out around the ink, red on yellow JPEG": lambda d: cut_out_jpeg(
        d, 85, canvas=(200, 200), box=(60, 60, 80), brush=11, paper=(250, 230, 120, 255), ink=(200, 40, 40, 255)),
    "tiny": lambda d: encode(draw(d, canvas=(400, 400), box=(50, 300, 24), brush=3)),
    "huge canvas, thin brush": lambda d: encode(draw(d, canvas=(2000, 2000), brush=6)),
    "very thin strokes": lambda d: encode(draw(d, brush=1.5)),
    "very thick strokes": lambda d: encode(draw(d, brush=34)),
    "JPEG photo-like": lambda d: encode(rgb(draw(d, canvas=(1200, 900), paper=(235, 232, 225, 255),
                                                 ink=(40, 40, 60, 255), brush=22)), "JPEG", quality=70),
    "WebP": lambda d: encode(draw(d, paper=WHITE), "WEBP"),
    "BMP": lambda d: encode(rgb(draw(d, paper=WHITE)), "BMP"),
    "grey L": lambda d: encode(draw(d, paper=WHITE).convert("L")),
    "LA with alpha ink": lambda d: encode(draw(d).convert("LA")),
    "CMYK JPEG": lambda d: encode(rgb(draw(d, paper=WHITE)).convert("CMYK"), "JPEG", quality=90),
    "palette with transparency": lambda d: encode(draw(d).convert("P")),
    "16-bit grey": lambda d: encode(Image.fromarray(
        (np.asarray(draw(d, paper=WHITE).convert("L"), np.uint16) * 257))),
}


@pytest.mark.parametrize("kind", CASES)
def test_every_kind_of_drawing_reads_right(kind, classify):
    for digit in range(10):
        data = CASES[kind](digit)
        assert_mnist_like(preprocess(data))
        assert classify(data) == digit, f"{kind}: drew {digit}"


PAPERS = {
    "blue pen on a white notebook": ((246, 244, 238), (25, 45, 140)),
    "pencil on cream paper": ((238, 228, 200), (70, 66, 60)),
    "black pen on a yellow pad": ((250, 240, 150), (20, 20, 30)),
    "chalk on a green board": ((40, 62, 48), (235, 235, 225)),
}


@pytest.mark.parametrize("kind", PAPERS)
def test_photos_of_paper_read_right(kind, classify):
    """Light falling off, shadows, grain, ruled lines, blur, noise and JPEG, as phones deliver."""
    paper, ink_colour = PAPERS[kind]
    for digit in range(10):
        assert classify(photo(digit, paper, ink_colour, seed=digit)) == digit, f"{kind}: wrote {digit}"


@pytest.mark.parametrize("seed", range(12))
def test_a_photographed_blank_sheet_is_no_digit(seed):
    """Lines, shadows and grain are not ink."""
    rng = random.Random(seed)
    paper = rng.choice([p for p, _ in PAPERS.values()])
    with pytest.raises(NoDigitError):
        preprocess(camera(sheet(1000, 750, paper, rng), rng))


DESKS = {"dark wood": (60, 40, 25), "light wood": (120, 90, 60), "black": (30, 30, 30), "grey": (180, 180, 175)}


@pytest.mark.parametrize("desk", DESKS)
def test_photos_of_a_sheet_lying_on_a_desk_read_right(desk, classify):
    """The desk around the sheet is not the paper (though it is the photo's border), nor is it ink."""
    for digit in range(10):
        assert classify(photo(digit, (246, 244, 238), (25, 45, 140), seed=digit, desk=DESKS[desk])) == digit, \
            f"on a {desk} desk: wrote {digit}"


# Every paper on every desk but a dark board on dark wood: the desk's colour is as even as a canvas's
# and the board not far from it, so the board is read as ink on it, faintly, and its grain passes
# (the note).
@pytest.mark.parametrize("kind, desk", [(kind, desk) for kind in PAPERS for desk in DESKS
                                        if (kind, desk) != ("chalk on a green board", "dark wood")])
def test_a_photographed_blank_sheet_on_a_desk_is_no_digit(kind, desk):
    """The desk showing along a side or two of the photo, the sheet filling the rest, is no digit."""
    for seed in range(4):
        rng = random.Random(seed)
        with pytest.raises(NoDigitError):
            preprocess(camera(on_desk(sheet(1000, 750, PAPERS[kind][0], rng), DESKS[desk], rng), rng))


@pytest.mark.parametrize("kind, desk, turned", [
    ("blue pen on a white notebook", "dark wood", -12), ("blue pen on a white notebook", "light wood", 8),
    ("blue pen on a white notebook", "black", 12), ("chalk on a green board", "grey", -12),
    ("chalk on a green board", "grey", 12), ("pencil on cream paper", "light wood", 12),
])
@pytest.mark.parametrize("side", [None, 100], ids=["photo", "thumbnail"])
def test_photos_of_a_sheet_turned_on_a_desk_read_right(kind, desk, turned, side, classify):
    """The sheet fills the photo but for the desk in its corners and, where light falls off, wedges of it
    along the sides: none of it is ink, in the photo or in a thumbnail of it `side` px long."""
    paper, ink_colour = PAPERS[kind]
    for digit in range(10):
        data = photo(digit, paper, ink_colour, seed=digit, desk=DESKS[desk], turned=turned)
        if side:
            image = Image.open(io.BytesIO(data))
            image.thumbnail((side, side), Image.Resampling.LANCZOS)
            data = encode(image, "JPEG", quality=80)
        assert classify(data) == digit, f"{kind} turned {turned} degrees on a {desk} desk: wrote {digit}"


@pytest.mark.parametrize("kind", ["blue pen on a white notebook", "pencil on cream paper", "black pen on a yellow pad"])
def test_scans_of_ruled_and_squared_paper_read_right(kind, classify):
    # Evenly lit, a scan is read as a canvas is: its lines stand out from the paper as the ink does,
    # far more faintly, but they can hold more pixels than a digit written across a few of them.
    paper, ink = PAPERS[kind]
    for digit in range(10):
        assert classify(scan(digit, paper, ink, seed=digit)) == digit, f"wrote {digit}"


def test_a_red_margin_line_is_not_ink(classify):
    for digit in range(10):
        assert classify(photo(digit, (246, 244, 238), (20, 20, 30), seed=digit, margin=True)) == digit, f"wrote {digit}"


def test_a_digit_cut_out_of_a_coloured_jpeg_reads_right(classify):
    # JPEG's ringing and its smeared colour leave no colour of such a cut-out's border the paper's, and
    # the digit crosses it from edge to edge as a margin line does (stop 33: read as a photo, it was
    # taken for the frame); in brightness, the border is still paper crossed by ink.
    for digit in range(10):
        data = cut_out_jpeg(digit, 90, brush=9, paper=(250, 230, 120, 255), ink=(30, 60, 200, 255))
        assert classify(data) == digit, f"cut out {digit}"


@pytest.mark.parametrize("desk", [None, *DESKS])
def test_a_photographed_blank_page_with_a_margin_on_a_desk_is_no_digit(desk):
    rng = random.Random(7)
    page = sheet(1000, 750, (246, 244, 238), rng, margin=True)
    with pytest.raises(NoDigitError):
        preprocess(camera(on_desk(page, DESKS.get(desk), rng), rng))


def test_gif_uses_the_first_frame(classify):
    frames = [draw(3, paper=WHITE).convert("P"), draw(8, paper=WHITE).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert classify(buffer.getvalue()) == 3


@pytest.mark.parametrize("orientation, rotate", [(6, 90), (8, -90), (3, 180)])
def test_exif_orientation_is_respected(classify, orientation, rotate):
    stored = rgb(draw(7, paper=WHITE)).rotate(rotate, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", exif=exif.tobytes())
    assert classify(data) == 7


def test_tilted_digits(classify):
    for digit in range(10):
        for angle in (-0.3, 0.3):
            assert classify(encode(draw(digit, angle=angle))) == digit


@pytest.mark.parametrize("share", [0.0, 0.05, 0.4, 1.0])
def test_pieces_are_measured_as_opencv_measures_them(share):
    rng = np.random.default_rng(round(share * 100))
    mask = cv2.dilate((rng.random((120, 170)) < share / 6).view(np.uint8), np.ones((3, 3), np.uint8))
    count, labels, stats = components(mask)
    expected_count, expected_labels, expected, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert count == expected_count and np.array_equal(labels, expected_labels)
    np.testing.assert_array_equal(stats[1:], expected[1:])
    assert not stats[0].any()


def test_specks_are_ignored():
    clean = draw(4, canvas=(300, 300), brush=14)
    specked = clean.copy()
    for x, y in [(5, 5), (290, 10), (280, 290)]:
        specked.paste(BLACK, (x, y, x + 3, y + 3))
    np.testing.assert_allclose(preprocess(encode(specked)), preprocess(encode(clean)), atol=1e-6)


@pytest.mark.parametrize("image", [
    Image.new("RGBA", (280, 280)),                       # an untouched transparent canvas
    Image.new("RGB", (280, 280), "white"),              # a blank sheet
    Image.new("RGB", (64, 64), (200, 30, 30)),          # one flat colour
    Image.new("L", (1, 1)),                             # a single pixel
], ids=["transparent", "white", "flat colour", "one pixel"])
def test_blank_is_no_digit(image):
    with pytest.raises(NoDigitError):
        preprocess(encode(image))


def test_a_lone_dot_is_no_digit():
    image = Image.new("RGBA", (280, 280))
    image.paste(BLACK, (140, 140, 143, 143))
    with pytest.raises(NoDigitError):
        preprocess(encode(image))


def test_faint_noise_is_no_digit():
    rng = np.random.default_rng(0)
    noise = (245 + rng.integers(-6, 6, (200, 200))).astype(np.uint8)
    with pytest.raises(NoDigitError):
        preprocess(encode(Image.fromarray(noise)))


@pytest.mark.parametrize("data, status", [
    (b"", 400),
    (b"hello, not an image", 415),
    (b"%PDF-1.4 and so on", 415),
])
def test_undecodable_input(data, status):
    with pytest.raises(ImageError) as info:
        decode(data)
    assert info.value.status == status


def test_truncated_image_is_a_400():
    data = encode(draw(5, paper=WHITE))
    with pytest.raises(ImageError) as info:
        preprocess(data[: len(data) // 2])
    assert info.value.status == 400


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "I;16", "RGB;16", "RGBA;16"])
def test_pngs_read_the_same_whichever_library_decodes_them(mode, monkeypatch):
    """Wuffs decodes the common PNGs where it is installed; Pillow decodes every PNG elsewhere.
    Both must give preprocessing the same pixels."""
    from app.core.preprocess import decoding

    paper = None if "A" in mode else (250, 240, 200, 255)  # 700 px: the decoded picture is scaled down
    drawn = draw(3, canvas=(700, 300), paper=paper, ink=(20, 40, 160, 255))
    if mode == "I;16":
        data = encode(Image.fromarray(np.asarray(drawn.convert("L"), np.uint16) * 257))
    elif mode.endswith(";16"):  # Pillow reads 16-bit colour as 8-bit RGB(A) but cannot write it
        pixels = np.asarray(drawn.convert(mode[:-3]), np.uint16) * 256 + 200
        data = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if "A" in mode else cv2.COLOR_RGB2BGR))[1]
        data = data.tobytes()
    else:
        data = encode(drawn.convert(mode))
    fast = decode(data)
    monkeypatch.setattr(decoding, "wuffs", None)
    slow = decode(data)
    assert fast.size == slow.size == (700, 300)
    np.testing.assert_array_equal(fast.colour, slow.colour)
    assert (fast.alpha is None) == (slow.alpha is None)
    if fast.alpha is not None:
        np.testing.assert_array_equal(fast.alpha, slow.alpha)
    with pytest.raises(ImageError) as info:
        decode(data[: len(data) // 2])
    assert info.value.status == 400


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("canvas", [(300, 240), (900, 700), (3000, 2600)], ids=["whole", "half", "eighth"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpegs_read_as_pillow_reads_them(mode, canvas, orientation):
    """OpenCV decodes grey and RGB JPEGs: to Pillow's pixels at the same reduced scale, turned
    upright by the EXIF orientation the same way, with the size of the upright image."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(draw(2, canvas=canvas, paper=(250, 240, 200, 255), ink=(20, 40, 160, 255)).convert(mode),
                  "JPEG", quality=85, exif=exif.tobytes())
    reference = Image.open(io.BytesIO(data))
    reference.draft(mode, (320, 320))
    reference = ImageOps.exif_transpose(reference)
    picture = decode(data)
    expected = np.asarray(reference)
    np.testing.assert_array_equal(picture.colour, expected.reshape(*expected.shape[:2], -1))
    assert picture.alpha is None
    assert picture.size == (canvas[::-1] if orientation in (5, 6, 7, 8) else canvas)


@pytest.mark.parametrize("paper, ink, grey", [
    ((255, 255, 255, 255), (10, 10, 10, 255), True),      # black on white
    ((25, 25, 30, 255), (240, 240, 240, 255), True),      # white on a dark canvas, a touch blue
    ((250, 240, 200, 255), (20, 40, 160, 255), False),    # blue on cream
    ((255, 255, 255, 255), (200, 30, 30, 255), False),    # red on white
])
def test_canvas_jpegs_grey_all_over_are_read_in_grey(classify, paper, ink, grey):
    """A colour JPEG canvas with no colour in it is decoded to its luma, as Pillow decodes it to
    grey; one with colour anywhere keeps its colours. Either way it reads right."""
    data = encode(draw(4, canvas=(400, 300), paper=paper, ink=ink, brush=6).convert("RGB"), "JPEG", quality=85)
    picture = decode(data)
    assert (picture.colour.shape[-1] == 1) == grey
    if grey:
        reference = Image.open(io.BytesIO(data))
        reference.draft("L", reference.size)
        np.testing.assert_array_equal(picture.colour[..., 0], np.asarray(reference))
    assert classify(data) == 4


def test_too_many_pixels_is_refused_before_decoding():
    data = encode(Image.new("L", (5000, 5000), 255))
    with pytest.raises(ImageError) as info:
        decode(data, max_pixels=10_000_000)
    assert info.value.status == 413


def test_ink_is_in_unit_range_for_both_polarities():
    a = ink(draw(2, paper=WHITE))
    b = ink(draw(2, paper=BLACK, ink=WHITE))
    assert a.min() >= 0 and a.max() == 1
    np.testing.assert_allclose(a, b, atol=0.02)


def test_preview_png_is_the_field():
    field = preprocess(encode(draw(9)))
    image = Image.open(io.BytesIO(to_png(field)))
    assert image.size == (28, 28) and image.mode == "L"
    np.testing.assert_allclose(np.asarray(image) / 255, field, atol=1 / 255)


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
@pytest.mark.parametrize("thicker", [True, False])
def test_strokes_are_reshaped_with_the_brush_training_draws_with(radius, thicker):
    """Preprocessing's NumPy brush and training's batched torch brush must stay the same shape."""
    import torch

    from app.core.preprocess.fields import _reshape_strokes
    from model.augment import dilate

    strokes = np.random.default_rng(radius).random((30, 20)).astype(np.float32) ** 4
    x = torch.from_numpy(np.pad(strokes, radius))[None, None]
    x = x if thicker else -x
    for i in range(radius):
        x = dilate(x, square=i % 2 == 1)
    expected = (x if thicker else -x)[0, 0].numpy()
    np.testing.assert_array_equal(_reshape_strokes(strokes, radius, thicker), expected)
