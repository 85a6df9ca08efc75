"""Accuracy and speed on whole numbers, through the real /predict/number.

Numbers of 2 to 8 MNIST test digits, each thinned to its centre line and redrawn as pen strokes
(as bench/drawn.py does), composed on a canvas: gaps wide, tight, touching or overlapping;
digit sizes and baselines jittered; every background and format of bench/drawn.py. Beside
digitpad, the baseline a newcomer would write first: connected components merged where their
columns overlap, each read by the shipped model.

Each number is also sent as the page sends a drawing: its picture (black strokes on a transparent
canvas) and the pen's strokes that drew it, which tell touching digits apart. More numbers are
written on paper or a board and photographed, as bench/drawn.py photographs digits, and more on
a line that climbs or falls 4-12 degrees, as people write where no ruled line keeps them level,
more whose digits differ in size by up to a third either way, as some hands write them (the
main set's differ by up to 15%), and more written smaller or larger than the main set's 40-110 px,
or with a finer or fatter pen than its 5-16% of their height. More are drawn exactly as
bench/drawn.py draws its digits (its round brush of 4-22% of the height, in Pillow at twice the
size, 20-160 px high), their gaps measured between the digits' boxes.

Then the speed target: numbers of four digits of each gap kind read in this process, on one
thread, decoding included, from the image and from the page's picture and strokes.

    python -m bench.numbers                  # 700 numbers, starts its own server
    python -m bench.numbers --count 2000 --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import requests
import torch
from PIL import Image, ImageDraw

from app.core import segment
from app.core.classifier import Classifier, NumberReader
from app.core.preprocess import INK_THRESHOLD, NoDigitError, decode, ink, to_mnist
from app.web import inputs
from app.web.api import data_url
from bench.drawn import CANVASES, brush_along, colours, encoded, phone_sheet
from bench.serve import Gunicorn, timeit
from model import mnist
from model.checkpoint import DEFAULT_WEIGHTS
from model.pen import BASELINES, GAPS, MOST_BASELINES, MOST_SIZES, SIZES, Written, centre_lines, place, write
from tests.drawing import camera, sheet

# Numbers written smaller or larger than the main set's (40-110 px), or with a finer or fatter pen
# (5-16% of their height), as people and scripts send them: `model/pen.py`'s `write`.
PENS = {
    "small (18-40 px)": {"heights": (18, 40)},
    "large (110-250 px)": {"heights": (110, 250)},
    "with a fine pen (2-5% of their height)": {"brushes": (0.02, 0.05)},
    "with a fat marker (16-25%)": {"brushes": (0.16, 0.25)},
}

# Numbers drawn as bench/drawn.py draws a digit (`brushed`): the gaps between the digits' boxes, in
# heights of the number; the last, boxes sliding into each other, as the touching numbers
# seem to be drawn (the baseline reads about 30% of them; the issue's, 26%).
BOX_GAPS = {"wide": (0.3, 0.7), "tight": (0.05, 0.15), "boxes overlapping": (-0.12, 0.0)}


def encode(coverage: np.ndarray, kind: str, rng: random.Random) -> bytes:
    """The coverage map as the kind of image says: transparent, white, dark or coloured; PNG or JPEG."""
    ink_colour, paper = colours(kind, rng)
    alpha = coverage[..., None]
    if paper is None:
        pixels = np.concatenate([np.broadcast_to(np.array(ink_colour[:3], np.float32), (*coverage.shape, 3)),
                                 255 * alpha], axis=-1)
    else:
        pixels = np.array(paper[:3], np.float32) * (1 - alpha) + np.array(ink_colour[:3], np.float32) * alpha
    return encoded(Image.fromarray(np.round(pixels).astype(np.uint8)), kind, rng)


def baseline(data: bytes, classifier: Classifier) -> str:
    """Connected components, merged where their columns overlap, each read by the model."""
    ink_map = ink(decode(data))
    mask = (ink_map > INK_THRESHOLD).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    spans = sorted([s[cv2.CC_STAT_LEFT], s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH], i]
                   for i, s in enumerate(stats) if i and s[cv2.CC_STAT_AREA] >= 0.04 * stats[1:, 4].max())
    groups: list[list] = []
    for x0, x1, label in spans:
        if groups and x0 < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], x1)
            groups[-1][2].append(label)
        else:
            groups.append([x0, x1, [label]])
    fields = []
    for _, _, members in groups:
        try:
            fields.append(to_mnist(np.where(np.isin(labels, members), ink_map, 0)))
        except NoDigitError:
            pass
    if not fields:
        return ""
    return "".join(str(d) for d in classifier.probabilities(np.stack(fields)).argmax(1))


def written_numbers(images: torch.Tensor, labels: torch.Tensor, count: int, rng: random.Random,
                    lengths: Sequence[int], sizes: float = SIZES, baselines: float = BASELINES, **pen: tuple
                    ) -> Iterator[tuple[Written, str, str, int]]:
    """`count` numbers written with `model/pen.py` (`write`'s `sizes`, `baselines` and `pen`:
    `heights`, `brushes`), every length and gap kind in turn: (the number, its digits, its gap
    kind, its length). Lazily, so that what the caller draws from `rng` for each number comes
    before the next one."""
    strokes_of: dict[int, tuple] = {}
    for n in range(count):
        length = lengths[n % len(lengths)]
        gap = list(GAPS)[(n // len(lengths)) % len(GAPS)]
        chosen = [rng.randrange(len(images)) for _ in range(length)]
        items = [strokes_of.setdefault(i, centre_lines(images[i].numpy())) for i in chosen]
        yield (write(items, [gap] * (length - 1), rng, sizes, baselines, **pen),
               "".join(str(int(labels[i])) for i in chosen), gap, length)


def numbers_of(images: torch.Tensor, labels: torch.Tensor, count: int, rng: random.Random,
               lengths: Sequence[int] = range(2, 9), tilt: tuple[float, float] | None = None,
               sizes: float = SIZES, baselines: float = BASELINES, **pen: tuple) -> list[tuple[bytes, str, dict]]:
    """`count` numbers, every length, gap kind and canvas kind in turn: (image, digits, what it is).
    With `tilt`, each written on a line that climbs or falls by that many degrees (low, high);
    `sizes` and `baselines`: how far its digits' heights and bottoms stray, `pen`: how high the
    number is and how wide the pen (`model/pen.py`'s `write`)."""
    numbers = []
    for n, (written, digits, gap, length) in enumerate(written_numbers(images, labels, count, rng, lengths,
                                                                       sizes, baselines, **pen)):
        kind = CANVASES[(n // (len(lengths) * len(GAPS))) % len(CANVASES)]
        info = {"gap": gap, "length": length, "kind": kind}
        coverage, paths = written.coverage, written.paths
        if tilt:
            info["degrees"] = rng.uniform(*tilt) * rng.choice((-1, 1))
            coverage, paths = turned(coverage, paths, info["degrees"])
        numbers.append((encode(coverage, kind, rng), digits,
                        {**info, "page": page_request(coverage, written.brush, paths)}))
    return numbers


def brushed(images: torch.Tensor, labels: torch.Tensor, count: int, rng: random.Random,
            lengths: Sequence[int] = range(2, 7)) -> list[tuple[bytes, str, dict]]:
    """`count` numbers drawn as bench/drawn.py draws a digit, every length, `BOX_GAPS` kind and
    canvas kind in turn: each digit's centre lines in a round brush of 4-22% of the number's
    height (log-uniform, as bench.drawn's), in Pillow at twice the size and averaged down, each
    digit 0.9-1.1 of the number's 20-160 px and turned up to 6 degrees. (image, digits, what it is)"""
    numbers = []
    for n in range(count):
        length = lengths[n % len(lengths)]
        gap = list(BOX_GAPS)[(n // len(lengths)) % len(BOX_GAPS)]
        kind = CANVASES[(n // (len(lengths) * len(BOX_GAPS))) % len(CANVASES)]
        chosen = [rng.randrange(len(images)) for _ in range(length)]
        height = float(np.exp(rng.uniform(np.log(20), np.log(160))))
        brush = max(1.5, height * float(np.exp(rng.uniform(np.log(0.04), np.log(0.22)))))
        digits = [(*centre_lines(images[i].numpy()), height * rng.uniform(0.9, 1.1)) for i in chosen]
        lefts, x = [], brush + rng.uniform(10, 60)
        for _, aspect, size in digits:
            lefts.append(x)
            x += aspect * size + rng.uniform(*BOX_GAPS[gap]) * height
        ink, paper = colours(kind, rng)
        s = 2  # supersampling, as bench.drawn's
        image = Image.new("RGBA", (int(x + 60) * s, int(1.6 * height + 40) * s), paper or (0, 0, 0, 0))
        pen = ImageDraw.Draw(image)
        for (segments, aspect, size), left in zip(digits, lefts):
            top = 20 + height - size + rng.uniform(-0.05, 0.05) * height
            angle = np.radians(rng.uniform(-6, 6))
            brush_along(pen, place(segments, aspect, left, top, size, angle) * s, brush * s, ink)
        image = image.resize((image.width // s, image.height // s), Image.Resampling.BOX)
        numbers.append((encoded(image, kind, rng), "".join(str(int(labels[i])) for i in chosen),
                        {"gap": gap, "length": length, "kind": kind}))
    return numbers


def turned(coverage: np.ndarray, paths: list[np.ndarray], degrees: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """A drawing and the pen's paths that drew it turned `degrees` anticlockwise, on a canvas grown to hold them."""
    height, width = coverage.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    size = (int(np.ceil(width * cos + height * sin)), int(np.ceil(width * sin + height * cos)))
    turn[:, 2] += ((size[0] - width) / 2, (size[1] - height) / 2)
    return (cv2.warpAffine(coverage, turn, size, flags=cv2.INTER_LINEAR),
            [path @ turn[:, :2].T + turn[:, 2] for path in paths])


def photographed(images: torch.Tensor, labels: torch.Tensor, count: int, rng: random.Random,
                 lengths: Sequence[int] = range(2, 7)) -> list[tuple[bytes, str, dict]]:
    """`count` numbers written on paper (or in chalk on a board) and photographed with a phone, every
    length and gap kind in turn: bench/drawn.py's sheets, inks and camera, JPEG 800-2000 px, the
    number across 40-85% of the sheet's width. (image, digits, what it is)"""
    numbers = []
    for written, digits, gap, length in written_numbers(images, labels, count, rng, lengths):
        coverage = written.coverage
        width, height, paper, inks = phone_sheet(rng)
        image = sheet(width, height, paper, rng)
        scale = min(rng.uniform(0.4, 0.85) * width / coverage.shape[1], 0.6 * height / coverage.shape[0])
        size = (max(1, round(coverage.shape[1] * scale)), max(1, round(coverage.shape[0] * scale)))
        alpha = cv2.resize(coverage, size, interpolation=cv2.INTER_LINEAR).clip(0, 1)[..., None]
        x, y = rng.randint(0, width - size[0]), rng.randint(0, height - size[1])
        region = image[y:y + size[1], x:x + size[0]]
        region[:] = region * (1 - alpha) + np.array(rng.choice(inks), np.float32) * alpha
        numbers.append((camera(image, rng), digits,
                        {"gap": gap, "length": length, "kind": "board" if sum(paper) < 300 else "paper"}))
    return numbers


def page_request(coverage: np.ndarray, brush: float, paths: list[np.ndarray]) -> dict:
    """The number as the page sends it to /predict/number: its board's picture (black strokes on
    a transparent canvas) and the pen's strokes, one point every 8 ms."""
    rgba = np.zeros((*coverage.shape, 4), np.uint8)
    rgba[..., 3] = np.round(coverage * 255)
    height, width = coverage.shape
    return {"image": data_url(cv2.imencode(".png", rgba)[1].tobytes()),
            "canvas": {"width": width, "height": height}, "brush": round(brush, 2),
            "strokes": [[[round(x, 2), round(y, 2), 8 * k] for k, (x, y) in enumerate(path.tolist())]
                        for path in paths]}


def reading_times(numbers: list[tuple[bytes, str, dict]]) -> dict[str, dict[str, np.ndarray]]:
    """ms to read each number in this process, one thread like a worker, best of 3 calls, by gap:
    {"image": ..., "page": ...}, the image alone and the page's picture with its strokes."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    reader = NumberReader.load(Classifier(DEFAULT_WEIGHTS, "cpu"), device="cpu")
    times: dict[str, dict[str, list[float]]] = {"image": defaultdict(list), "page": defaultdict(list)}
    for data, _, info in numbers:
        page = info["page"]
        times["image"][info["gap"]].append(timeit(lambda: segment.read_image(data, reader, 16), repeat=3))
        times["page"][info["gap"]].append(timeit(lambda: segment.read_strokes(
            inputs.strokes(page), reader, 16, inputs.decode_base64(page["image"])), repeat=3))
    return {source: {gap: np.array(ms) for gap, ms in by_gap.items()} for source, by_gap in times.items()}


def print_by_gap(heading: str, numbers: list[tuple[bytes, str, dict]], from_images: list[str],
                 from_page: list[str] | None, naive: list[str]) -> None:
    """A table of whole numbers read right, by gap kind: as images, from the page (unless None: a
    set drawn without strokes), by the baseline."""
    columns = {"digitpad, whole number": from_images, "the same drawn on the page": from_page,
               "baseline, whole number": naive}
    columns = {name: guesses for name, guesses in columns.items() if guesses is not None}
    print(f"| {heading} | count | {' | '.join(columns)} |")
    print(f"|---|---:|{'---:|' * len(columns)}")
    for name in ["all", *dict.fromkeys(info["gap"] for _, _, info in numbers)]:
        members = [n for n, (_, _, info) in enumerate(numbers) if name in ("all", info["gap"])]
        right = (np.mean([guesses[n] == numbers[n][1] for n in members]) for guesses in columns.values())
        print(f"| {f'**{name}**' if name == 'all' else f'gap: {name}'} | {len(members)} | "
              f"{' | '.join(f'{r:.1%}' for r in right)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=700, help="how many numbers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR or data/mnist)")
    parser.add_argument("--url", default=None, help="a running digitpad server (default: start one)")
    parser.add_argument("--photos", type=int, default=200, help="numbers of 2-6 digits photographed on paper")
    parser.add_argument("--uphill", type=int, default=200,
                        help="numbers of 2-6 digits written on a line 4-12 degrees off level")
    parser.add_argument("--mixed-sizes", type=int, default=200,
                        help="numbers of 2-6 digits whose digits differ in height by up to a third either way")
    parser.add_argument("--pens", type=int, default=200,
                        help="numbers of 2-6 digits written small, large, with a fine pen and with a fat marker, each")
    parser.add_argument("--brushed", type=int, default=300,
                        help="numbers of 2-6 digits drawn as bench/drawn.py draws a digit")
    parser.add_argument("--timed", type=int, default=60, help="4-digit numbers of each gap kind timed in-process")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    images, labels = mnist.load("test", args.data_dir)
    print(f"composing {args.count} numbers of MNIST test digits ...", file=sys.stderr)
    numbers = numbers_of(images, labels, args.count, rng)
    timed = numbers_of(images, labels, 4 * args.timed, rng, lengths=[4])
    photos = photographed(images, labels, args.photos, rng)
    uphill = numbers_of(images, labels, args.uphill, rng, lengths=range(2, 7), tilt=(4, 12))
    mixed = numbers_of(images, labels, args.mixed_sizes, rng, lengths=range(2, 7), sizes=MOST_SIZES,
                       baselines=MOST_BASELINES)
    pens = {name: numbers_of(images, labels, args.pens, rng, lengths=range(2, 7), **pen) for name, pen in PENS.items()}
    drawn_like_digits = brushed(images, labels, args.brushed, rng)

    server = None if args.url else Gunicorn("app:create_app()", workers=2)
    url = args.url or server.url
    session = requests.Session()

    def ask(data: bytes | dict) -> tuple[str, float]:
        """An image as a script sends it, or (a dict) a drawing as the page sends it."""
        started = time.perf_counter()
        if isinstance(data, dict):
            response = session.post(f"{url}/predict/number", json=data, timeout=60)
        else:
            mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"
            response = session.post(f"{url}/predict/number", data=data, headers={"Content-Type": mime}, timeout=60)
        elapsed = time.perf_counter() - started
        return (response.json()["number"] if response.ok else ""), elapsed * 1000

    try:
        latencies = [ask(data)[1] for data, _, _ in numbers[:200]]  # one client: latency
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda item: ask(item[0])[0], numbers))
        elapsed = time.perf_counter() - started
        with ThreadPoolExecutor(4) as pool:
            from_page = list(pool.map(lambda item: ask(item[2]["page"])[0], numbers))
            from_photos = list(pool.map(lambda item: ask(item[0])[0], photos))
            from_uphill, from_mixed, *from_pens = ([list(pool.map(lambda item: ask(item[0])[0], these)),
                                                    list(pool.map(lambda item: ask(item[2]["page"])[0], these))]
                                                   for these in (uphill, mixed, *pens.values()))
            from_brushed = list(pool.map(lambda item: ask(item[0])[0], drawn_like_digits))
    finally:
        if server:
            server.stop()

    torch.set_num_threads(1)
    classifier = Classifier(DEFAULT_WEIGHTS, "cpu")
    naive = [baseline(data, classifier) for data, _, _ in numbers]

    groups: dict[str, list[int]] = defaultdict(list)
    for n, (_, _, info) in enumerate(numbers):
        groups["all"].append(n)
        groups[f"gap: {info['gap']}"].append(n)
        groups[f"length {info['length']}"].append(n)
        groups[info["kind"]].append(n)
    truth = [t for _, t, _ in numbers]

    def per_digit(guesses: list[str], members: list[int]) -> float:
        right = sum(sum(a == b for a, b in zip(guesses[n], truth[n])) for n in members if len(guesses[n]) == len(truth[n]))
        return right / sum(len(truth[n]) for n in members)

    print(f"\nWhole numbers: {len(numbers)} numbers of 2-8 MNIST test digits drawn as strokes, through "
          f"{url}/predict/number ({len(numbers) / elapsed:.0f} numbers/s with 4 clients)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"one-client latency p50 {np.percentile(latencies, 50):.1f} ms, p90 {np.percentile(latencies, 90):.1f} ms\n")
    print("| numbers | count | digitpad, whole number | digitpad, digits right in place | baseline, whole number "
          "| the same drawn on the page (picture and strokes), whole number |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = ["all", *[f"gap: {g}" for g in GAPS], *[f"length {k}" for k in range(2, 9)], *CANVASES]
    for name in rows:
        members = groups.get(name, [])
        if not members:
            continue
        ours = np.mean([answers[n] == truth[n] for n in members])
        theirs = np.mean([naive[n] == truth[n] for n in members])
        page = np.mean([from_page[n] == truth[n] for n in members])
        label = f"**{name}**" if name == "all" else name
        print(f"| {label} | {len(members)} | {ours:.1%} | {per_digit(answers, members):.2%} | {theirs:.1%} | {page:.1%} |")

    naive_photos = [baseline(data, classifier) for data, _, _ in photos]
    print(f"\n{len(photos)} numbers of 2-6 MNIST test digits written on paper or a board and photographed "
          f"(JPEG, 800-2000 px), through {url}/predict/number:\n")
    print("| photographed numbers | count | digitpad, whole number | baseline, whole number |")
    print("|---|---:|---:|---:|")
    photo_groups: dict[str, list[int]] = defaultdict(list)
    for n, (_, _, info) in enumerate(photos):
        for name in ("all", f"gap: {info['gap']}", f"on {info['kind']}"):
            photo_groups[name].append(n)
    for name in ["all", *[f"gap: {g}" for g in GAPS], "on paper", "on board"]:
        members = photo_groups.get(name, [])
        if members:
            ours = np.mean([from_photos[n] == photos[n][1] for n in members])
            theirs = np.mean([naive_photos[n] == photos[n][1] for n in members])
            print(f"| {f'**{name}**' if name == 'all' else name} | {len(members)} | {ours:.1%} | {theirs:.1%} |")

    print(f"\n{len(uphill)} numbers of 2-6 MNIST test digits written on a line that climbs or falls 4-12 degrees, "
          f"every canvas kind, through {url}/predict/number:\n")
    print_by_gap("numbers off level", uphill, *from_uphill, [baseline(data, classifier) for data, _, _ in uphill])
    print(f"\n{len(mixed)} numbers of 2-6 MNIST test digits, each digit {1 - MOST_SIZES:.2f}-{1 + MOST_SIZES:.2f} times "
          f"the number's height and up to {MOST_BASELINES} heights off its line, every canvas kind, "
          f"through {url}/predict/number:\n")
    print_by_gap("digits of mixed sizes", mixed, *from_mixed, [baseline(data, classifier) for data, _, _ in mixed])

    for (name, these), answered in zip(pens.items(), from_pens):
        print(f"\n{len(these)} numbers of 2-6 MNIST test digits written {name}, every canvas kind, "
              f"through {url}/predict/number:\n")
        print_by_gap(name, these, *answered, [baseline(data, classifier) for data, _, _ in these])

    print(f"\n{len(drawn_like_digits)} numbers of 2-6 MNIST test digits drawn as bench/drawn.py draws a digit "
          f"(a round brush of 4-22% of the height, 20-160 px high, gaps between the digits' boxes), every canvas "
          f"kind, through {url}/predict/number:\n")
    print_by_gap("drawn as bench.drawn draws digits", drawn_like_digits, from_brushed, None,
                 [baseline(data, classifier) for data, _, _ in drawn_like_digits])

    times = reading_times(timed)
    print(f"\n4-digit numbers read in this process, one thread, decoding (and the strokes' parsing) included, "
          f"best of 3 calls ({args.timed} of each gap kind, every canvas kind), ms:\n")
    print("| gap | image p50 | image p90 | page (picture and strokes) p50 | page p90 |")
    print("|---|---:|---:|---:|---:|")
    image, page = times["image"], times["page"]
    for gap in [*image, "**all**"]:
        a, b = (np.concatenate(list(t.values())) if gap == "**all**" else t[gap] for t in (image, page))
        print(f"| {gap} | {np.percentile(a, 50):.1f} | {np.percentile(a, 90):.1f} "
              f"| {np.percentile(b, 50):.1f} | {np.percentile(b, 90):.1f} |")


if __name__ == "__main__":
    main()
