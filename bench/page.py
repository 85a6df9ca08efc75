"""Numbers drawn on the page in a real browser: with the mouse on a desktop, with touch on a phone.

Numbers of 2-6 MNIST test digits, written with `model/pen.py`'s strokes as bench/numbers.py writes
them (gaps wide, tight, touching or overlapping), are drawn on the board in Debian's Chromium with
real mouse moves on a desktop and real touch events on a phone, one pointer event for each of the
pen's points (one every 8 ms), the board's brush set to the pen's width. What the page says once
its last answer is on screen is the reading; beside it, what the server reads from the same
strokes sent as bench/numbers.py sends a drawing from the page (the pen's picture, not the
browser's), in this process. The two differ only where the browser's drawing does.

Needs Debian's Chromium (`apt-get install -y chromium`) and Playwright (`pip install -e ".[test]"`).

    python -m bench.page                     # 100 numbers each way, starts its own server
    python -m bench.page --count 40 --save-errors misread/
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from playwright.async_api import CDPSession, Page, async_playwright

from app.core import segment
from app.core.classifier import Classifier, NumberReader
from app.web import inputs
from bench.numbers import page_request, written_numbers
from bench.serve import Gunicorn
from model import mnist
from model.checkpoint import DEFAULT_WEIGHTS
from model.pen import GAPS, Written
from tests.chromium import ARGS, CHROMIUM, DESKTOP, PHONE

LENGTHS = range(2, 7)
DEVICES = {"mouse": ("the mouse, on a desktop", DESKTOP), "touch": ("touch, on a phone", PHONE)}
FILL = (0.9, 0.75)  # the most of the board's width and height a number is drawn across
# Counts the page's requests for a number and their answers, so that the bench reads the page
# only once the answer to the last stroke is on screen.
COUNT_ANSWERS = """
window.numberRequests = 0;
window.numberAnswers = 0;
const send = window.fetch;
window.fetch = async (...args) => {
  const counted = String(args[0]).endsWith("/predict/number");
  if (counted) window.numberRequests++;
  try {
    const response = await send(...args);
    if (counted) await response.clone().arrayBuffer();
    return response;
  } finally {
    if (counted) window.numberAnswers++;
  }
};
"""
ANSWERED = """before => window.numberRequests > before && window.numberAnswers === window.numberRequests
  && ["ready", "nodigit"].includes(document.querySelector("#result").dataset.state)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="numbers drawn each way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", type=int, default=4,
                        help="pages drawing at once (a page spends most of its time waiting for frames)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR or data/mnist)")
    parser.add_argument("--url", default=None, help="a running digitpad server (default: start one)")
    parser.add_argument("--save-errors", metavar="DIR", default=None, help="save a picture of each board misread")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's Chromium is not installed (apt-get install -y chromium)")

    images, labels = mnist.load("test", args.data_dir)
    numbers = list(written_numbers(images, labels, args.count, random.Random(args.seed), LENGTHS))
    errors = Path(args.save_errors) if args.save_errors else None
    if errors:
        errors.mkdir(parents=True, exist_ok=True)
    print(f"drawing {len(numbers)} numbers each way in Chromium ...", file=sys.stderr)
    server = None if args.url else Gunicorn("app:create_app()", workers=2)
    try:
        said = asyncio.run(read_on_the_page(args.url or server.url, numbers, args.pages, errors))
    finally:
        if server:
            server.stop()

    torch.set_num_threads(1)
    reader = NumberReader.load(Classifier(DEFAULT_WEIGHTS, "cpu"), device="cpu")
    sent = [segment.answer(segment.read_strokes(inputs.strokes(request), reader, 16,
                                                inputs.decode_base64(request["image"])))["number"]
            for request in (page_request(written.coverage, written.brush, written.paths) for written, *_ in numbers)]

    columns = [f"drawn with {name}" for name, _ in DEVICES.values()] + ["as bench.numbers sends them"]
    groups: dict[str, list[int]] = defaultdict(list)
    for n, (_, _, gap, length) in enumerate(numbers):
        for name in ("all", f"gap: {gap}", f"length {length}"):
            groups[name].append(n)
    print(f"\n{len(numbers)} numbers of 2-6 MNIST test digits drawn on the page in Chromium "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores), whole number right:\n")
    print(f"| numbers | count | {' | '.join(columns[:-1])} | the same strokes {columns[-1]} |")
    print("|---|---:|" + "---:|" * (len(DEVICES) + 1))
    for name in ["all", *[f"gap: {gap}" for gap in GAPS], *[f"length {k}" for k in LENGTHS]]:
        members = groups[name]
        if not members:
            continue
        right = [np.mean([readings[n] == numbers[n][1] for n in members]) for readings in [*said.values(), sent]]
        label = f"**{name}**" if name == "all" else name
        print(f"| {label} | {len(members)} | " + " | ".join(f"{share:.1%}" for share in right) + " |")
    for column, readings in zip(columns, [*said.values(), sent]):
        missed = [f"{numbers[n][1]} -> {reading or '(none)'}" for n, reading in enumerate(readings)
                  if reading != numbers[n][1]]
        print(f"\nmisread {column}: {', '.join(missed) or 'none'}")


async def read_on_the_page(url: str, numbers: list[tuple[Written, str, str, int]], pages: int,
                           errors: Path | None) -> dict[str, list[str]]:
    """What the page says for each number, drawn each way (`DEVICES`, by their keys), `pages` pages
    at a time."""
    said: dict[str, list[str]] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for device, (_, context) in DEVICES.items():
            readings = [""] * len(numbers)

            async def draw_share(first: int) -> None:
                ctx = await browser.new_context(**context)
                await ctx.add_init_script(COUNT_ANSWERS)
                page = await ctx.new_page()
                await page.goto(url + "/")
                await page.wait_for_selector("body[data-ready='true']")
                await page.locator("#canvas").scroll_into_view_if_needed()
                stroke = (partial(touch_stroke, await ctx.new_cdp_session(page)) if context.get("has_touch")
                          else partial(mouse_stroke, page))
                for n in range(first, len(numbers), pages):
                    written, digits = numbers[n][:2]
                    readings[n] = await draw_number(page, stroke, written)
                    if errors and readings[n] != digits:
                        await page.locator("#canvas").screenshot(
                            path=errors / f"{device}-{n:04d}-{digits}-read-{readings[n] or 'none'}.png")
                    await page.locator("#clear").click()
                    await page.wait_for_function("() => document.querySelector('#result').dataset.state === 'empty'")
                await ctx.close()

            await asyncio.gather(*(draw_share(first) for first in range(pages)))
            said[device] = readings
        await browser.close()
    return said


Stroke = Callable[[list[tuple[float, float]]], Awaitable[None]]


async def draw_number(page: Page, stroke: Stroke, written: Written) -> str:
    """Draw a number's strokes on the board, fitted to it, and what the page says once it has
    answered the last stroke."""
    board = await page.locator("#canvas").bounding_box()
    scale, (left, top) = fit(written, board["width"], board["height"])
    brush = min(max(round(written.brush * scale * 360 / board["height"]), 2), 40)  # the slider's range
    await page.locator("#brush").fill(str(brush))
    *strokes, last = [[(board["x"] + left + scale * x, board["y"] + top + scale * y) for x, y in path.tolist()]
                      for path in written.paths]
    for points in strokes:
        await stroke(points)
    before = await page.evaluate("window.numberRequests")
    await stroke(last)
    await page.wait_for_function(ANSWERED, arg=before, timeout=30_000)
    await page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    if await page.locator("#result").get_attribute("data-state") != "ready":
        return ""
    return (await page.locator("#digit").text_content() or "").strip()


async def mouse_stroke(page: Page, points: list[tuple[float, float]]) -> None:
    """One stroke with the mouse: a real mouse move to each point, the button held down."""
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*point)
    await page.mouse.up()


async def touch_stroke(cdp: CDPSession, points: list[tuple[float, float]]) -> None:
    """One stroke with a finger: a real touch event for each point, as a phone's screen sends them."""
    for kind, at in [("touchStart", points[:1]), *[("touchMove", [point]) for point in points[1:]], ("touchEnd", [])]:
        await cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in at]})


def fit(written: Written, width: float, height: float) -> tuple[float, tuple[float, float]]:
    """The scale that fits a number's ink across `FILL` of a board `width` x `height`, and where
    its map's top left corner then goes on the board, the ink centred."""
    rows, cols = np.flatnonzero(written.coverage.max(1) > 0), np.flatnonzero(written.coverage.max(0) > 0)
    ink_height, ink_width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    scale = min(FILL[0] * width / ink_width, FILL[1] * height / ink_height)
    left = (width - scale * ink_width) / 2 - scale * cols[0]
    top = (height - scale * ink_height) / 2 - scale * rows[0]
    return scale, (left, top)


if __name__ == "__main__":
    main()
