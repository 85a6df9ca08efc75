"""The drawing board in a real browser: Debian's Chromium driven by Playwright.

Digits are drawn with real mouse moves and real touch events along the strokes in
tests/drawing.py; screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.chromium import ARGS, CHROMIUM, DESKTOP, PHONE
from tests.conftest import ROOT
from tests.drawing import STROKES, _smooth, draw, encode

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "tests" / "artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def open_page(browser, server, request, **context):
    ctx = browser.new_context(**(context or DESKTOP))
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='true']")
    request.addfinalizer(ctx.close)
    page.problems = problems
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stroke_paths(digit: int, box: tuple[float, float, float], rect: dict) -> list[list[tuple[float, float]]]:
    """The digit's strokes in page coordinates; box is (left, top, height): left as a fraction of
    the board's width, top and height of its height (the digit keeps its shape on a wide board)."""
    left, top, size = box
    paths = []
    for stroke in STROKES[digit]:
        points = _smooth(stroke, per_segment=5)
        paths.append([(rect["x"] + left * rect["width"] + x * 0.7 * size * rect["height"],
                       rect["y"] + (top + y * size) * rect["height"]) for x, y in points])
    return paths


def number_boxes(count: int, gap: float, rect: dict, size: float = 0.55,
                 climb: float = 0.0) -> list[tuple[float, float, float]]:
    """Boxes for `count` digits side by side, `gap` (in digit heights) apart, centred on the board;
    a negative gap makes neighbours overlap. Long numbers are drawn smaller, to fit. With `climb`,
    the line rises that share of the board's height from the first digit to the last."""
    span = count * 0.7 + (count - 1) * gap
    size = min(size, 0.9 * rect["width"] / rect["height"] / span, 0.9 * (1 - abs(climb)))
    width = span * size * rect["height"] / rect["width"]
    left = (1 - width) / 2
    step = (0.7 + gap) * size * rect["height"] / rect["width"]
    rise = climb / max(count - 1, 1)
    return [(left + n * step, (1 - size) / 2 + climb / 2 - n * rise, size) for n in range(count)]


def draw_with_mouse(page, digit: int, box=(0.35, 0.15, 0.7)) -> None:
    rect = page.locator("#canvas").bounding_box()
    for path in stroke_paths(digit, box, rect):
        page.mouse.move(*path[0])
        page.mouse.down()
        for x, y in path[1:]:
            page.mouse.move(x, y, steps=2)
        page.mouse.up()


def draw_with_touch(page, digit: int, box=(0.35, 0.15, 0.7)) -> None:
    cdp = page.context.new_cdp_session(page)
    rect = page.locator("#canvas").bounding_box()
    for path in stroke_paths(digit, box, rect):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": path[0][0], "y": path[0][1]}]})
        for x, y in path[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def set_brush(page, value: int) -> None:
    page.locator("#brush").fill(str(value))


def expect_digit(page, digit: int | str) -> None:
    """The page says `digit` (or the number, a string of digits)."""
    page.wait_for_function(
        "d => document.querySelector('#result').dataset.state === 'ready' && "
        "document.querySelector('#digit').textContent === String(d)", arg=digit, timeout=10_000)


def clear(page) -> None:
    page.locator("#clear").click()
    page.wait_for_function("() => document.querySelector('#result').dataset.state === 'empty'")


@pytest.mark.parametrize("kind, box, brush", [
    ("large", (0.3, 0.06, 0.88), 16),
    ("small", (0.45, 0.4, 0.22), 6),
    ("off-centre", (0.04, 0.04, 0.35), 10),
    ("thin brush", (0.35, 0.15, 0.7), 2),
    ("thick brush", (0.35, 0.15, 0.7), 40),
])
def test_draw_digits_with_the_mouse(browser, server, request, kind, box, brush):
    page = open_page(browser, server, request)
    set_brush(page, brush)
    for digit in range(10):
        draw_with_mouse(page, digit, box)
        expect_digit(page, digit)
        if digit in (0, 4, 7):
            shot(page, f"desktop-{kind.replace(' ', '-')}-{digit}")
        clear(page)
    assert page.problems == []


def test_live_prediction_while_drawing(browser, server, request):
    page = open_page(browser, server, request)
    rect = page.locator("#canvas").bounding_box()
    path = stroke_paths(7, (0.35, 0.15, 0.7), rect)[0]
    page.mouse.move(*path[0])
    page.mouse.down()
    for x, y in path[1:]:
        page.mouse.move(x, y, steps=4)
    # Still holding the button: a prediction has already arrived.
    page.wait_for_function("() => document.querySelector('#result').dataset.state === 'ready'", timeout=10_000)
    page.mouse.up()
    expect_digit(page, 7)


def test_draw_with_touch_on_a_phone_without_scrolling(browser, server, request):
    page = open_page(browser, server, request, **PHONE)
    assert page.evaluate("document.documentElement.scrollHeight > innerHeight"), "page should be scrollable"
    page.locator("#canvas").scroll_into_view_if_needed()
    before = page.evaluate("scrollY")
    for digit in (2, 3, 5):
        draw_with_touch(page, digit)
        expect_digit(page, digit)
        assert page.evaluate("scrollY") == before, "drawing scrolled the page"
        if digit == 3:
            shot(page, "phone-touch-3")
        clear(page)
    assert page.problems == []


def test_blank_board_says_draw_a_digit_or_a_number(browser, server, request):
    page = open_page(browser, server, request)
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/predict" in r.url else None)
    assert page.locator("#status").text_content() == "Draw a digit or a number"
    assert page.locator("#digit").text_content() == "?"
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert sent == [] and page.locator("#status").text_content() == "Draw a digit or a number"
    shot(page, "desktop-blank")


def test_undo_and_clear(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 4)  # two strokes
    expect_digit(page, 4)
    page.locator("#undo").click()
    assert page.evaluate("document.querySelector('#canvas') && true")
    page.wait_for_function("() => document.querySelector('#digit').textContent !== '4' || "
                           "document.querySelector('#result').dataset.state !== 'ready'")
    page.keyboard.press("Control+z")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'Draw a digit or a number'")
    assert page.locator("#undo").is_disabled()
    draw_with_mouse(page, 1)
    expect_digit(page, 1)
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'Draw a digit or a number'")
    draw_with_mouse(page, 6)
    expect_digit(page, 6)
    clear(page)
    assert page.locator("#digit").text_content() == "?"


def test_upload_a_file(browser, server, request, tmp_path):
    page = open_page(browser, server, request)
    path = tmp_path / "eight.jpg"
    path.write_bytes(encode(draw(8, paper=(255, 255, 255, 255), canvas=(600, 450)).convert("RGB"), "JPEG"))
    page.locator("#file").set_input_files(str(path))
    expect_digit(page, 8)
    assert page.locator("#upload-preview").is_visible()
    shot(page, "desktop-upload-8")
    draw_with_mouse(page, 1)  # drawing replaces the upload
    expect_digit(page, 1)
    assert not page.locator("#upload-preview").is_visible()


def test_server_errors_are_shown_and_recovered_from(browser, server, request):
    page = open_page(browser, server, request)
    page.route("**/predict/number", lambda route: route.fulfill(
        status=503, content_type="application/json", body='{"error": "Service unavailable"}'))
    draw_with_mouse(page, 9)
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "Retrying" in error.text_content()
    shot(page, "desktop-server-error")
    page.unroute("**/predict/number")  # the server is back
    expect_digit(page, 9)
    assert error.is_hidden()


def test_model_panel_renders(browser, server, request):
    page = open_page(browser, server, request)
    page.wait_for_selector("body[data-model-panel='ready']")
    assert "99." in page.locator("#model-summary").text_content()
    assert page.locator("#curves path").count() == 2
    assert page.locator("#confusion rect").count() == 100
    page.locator("#model").scroll_into_view_if_needed()
    shot(page, "desktop-model-panel")


def test_keyboard_focus_order_and_labels(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 1)  # Undo is disabled, so unfocusable, on an empty board
    expect_digit(page, 1)
    page.locator("header a").first.focus()
    order = ["Draw"]
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    for control in ("canvas", "brush", "undo", "clear", "file"):
        assert control in order, order
    assert order.index("canvas") < order.index("brush") < order.index("clear")
    assert page.locator("#result").get_attribute("aria-live") == "polite"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_looks_finished_on_phone_and_desktop(browser, server, request, scheme):
    for name, context in (("phone", PHONE), ("desktop", DESKTOP)):
        page = open_page(browser, server, request, **context, color_scheme=scheme)
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "horizontal overflow"
        draw_with_mouse(page, 5)
        expect_digit(page, 5)
        # The winning digit's bar is drawn (most of its track filled), the others nearly empty.
        page.wait_for_function("""() => {
            const width = (el) => el.getBoundingClientRect().width;
            const top = document.querySelector('#bars li.top .fill');
            return top && width(top) > 0.5 * width(top.parentElement);
        }""")
        page.wait_for_selector("body[data-model-panel='ready']")
        shot(page, f"{name}-{scheme}")
        assert page.problems == []


def test_strict_csp_with_no_violations(browser, server, request):
    page = open_page(browser, server, request)
    csp = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    draw_with_mouse(page, 3)
    expect_digit(page, 3)
    assert not [p for p in page.problems if "Content Security Policy" in p]


def test_resizing_the_window_keeps_the_drawing(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 2)
    expect_digit(page, 2)
    ink_pixels = """() => {
        const c = document.querySelector('#canvas');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 128) n++;
        return n / (c.width * c.height);
    }"""
    before = page.evaluate(ink_pixels)
    page.set_viewport_size({"width": 700, "height": 900})
    page.wait_for_timeout(300)
    after = page.evaluate(ink_pixels)
    assert before > 0.01 and abs(after - before) < 0.5 * before, (before, after)
    clear(page)
    assert page.evaluate(ink_pixels) == 0


def test_loading_state_while_the_first_prediction_is_in_flight(browser, server, request):
    page = open_page(browser, server, request)
    held = []
    page.route("**/predict/number", lambda route: held.append(route))
    draw_with_mouse(page, 8)
    page.wait_for_function("() => document.querySelector('#result').dataset.state === 'loading'")
    assert page.locator("#status").text_content() == "Thinking…"
    shot(page, "desktop-loading")
    page.unroute("**/predict/number")  # lets the held requests through to the server
    expect_digit(page, 8)


def draw_number(page, digits: str, gap: float, touch: bool = False, size: float = 0.55, climb: float = 0.0) -> None:
    rect = page.locator("#canvas").bounding_box()
    for digit, box in zip(digits, number_boxes(len(digits), gap, rect, size, climb)):
        (draw_with_touch if touch else draw_with_mouse)(page, int(digit), box)


@pytest.mark.parametrize("number, gap", [
    ("2026", 0.3), ("42", 0.15), ("10", 0.1), ("907", 0.05), ("45", 0.2), ("31415", 0.12),
    ("11", -0.05),   # touching: the strokes cross, the strokes still tell them apart
    ("74", -0.1),    # the 7's bar reaches over the 4
])
def test_draw_numbers_with_the_mouse(browser, server, request, number, gap):
    page = open_page(browser, server, request)
    set_brush(page, 10)
    draw_number(page, number, gap)
    expect_digit(page, number)
    status = page.locator("#status").text_content()
    assert status.startswith(f"It's {number} ·"), status
    chips = page.locator("#chips button")
    assert chips.count() == len(number)
    shot(page, f"desktop-number-{number}")
    assert page.problems == []


@pytest.mark.parametrize("number, climb", [("31415", 0.4), ("123456", -0.4)])
def test_a_number_drawn_uphill_or_downhill_with_the_mouse(browser, server, request, number, climb):
    page = open_page(browser, server, request)
    set_brush(page, 10)
    draw_number(page, number, 0.35, size=0.4, climb=climb)
    expect_digit(page, number)
    assert page.locator("#status").text_content().startswith(f"It's {number} ·")
    assert page.problems == []


def test_each_digit_of_a_number_shows_its_probabilities_and_preview(browser, server, request):
    page = open_page(browser, server, request)
    set_brush(page, 10)
    draw_number(page, "386", 0.25)
    expect_digit(page, "386")
    previews = []
    for i, digit in enumerate("386"):
        chip = page.locator("#chips button").nth(i)
        chip.focus()  # keyboard users reach each digit with Tab
        assert chip.get_attribute("aria-pressed") == "true"
        assert f"Digit {i + 1}: {digit}" in chip.get_attribute("aria-label")
        page.wait_for_function("d => document.querySelector('#bars li.top .label').textContent === d", arg=digit)
        assert f"digit {i + 1} of 3" in page.locator("#bars-title").text_content()
        previews.append(page.locator("#preview").get_attribute("src"))
    assert len(set(previews)) == 3 and all(p.startswith("data:image/png;base64,") for p in previews)
    page.locator("#chips button").nth(1).click()
    assert page.locator("#chips button").nth(1).get_attribute("aria-pressed") == "true"
    shot(page, "desktop-number-digit-2")


def test_one_digit_shows_as_it_always_has(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 7)
    expect_digit(page, 7)
    assert page.locator("#status").text_content().startswith("It's a 7 ·")
    assert page.locator("#chips").is_hidden() and page.locator("#bars-title").is_hidden()
    assert page.locator("#preview").is_visible()


def test_numbers_with_touch_on_a_phone_with_the_result_in_view(browser, server, request):
    page = open_page(browser, server, request, **PHONE)
    page.locator("#canvas").scroll_into_view_if_needed()
    before = page.evaluate("scrollY")
    draw_number(page, "58", 0.2, touch=True, size=0.6)
    expect_digit(page, "58")
    assert page.evaluate("scrollY") == before, "drawing scrolled the page"
    # While drawing, the number, its digits and every probability are on screen, below the board.
    for selector in ("#digit", "#chips", "#preview", "#bars li:last-child"):
        box = page.locator(selector).bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= 844, (selector, box)
    shot(page, "phone-number-58")
    draw_with_touch(page, 1, box=(0.8, 0.2, 0.6))
    expect_digit(page, "581")
    assert page.problems == []


def test_inside_the_model_for_the_drawing(browser, server, request):
    page = open_page(browser, server, request)
    assert page.locator("#inside").get_attribute("data-state") == "empty"
    draw_with_mouse(page, 7)
    expect_digit(page, 7)
    page.wait_for_function("() => document.querySelector('#inside').dataset.state === 'ready'", timeout=15_000)
    page.locator("a[href='#inside']").click()  # the view is reachable from the top of the page
    stages = page.locator("#inside-stages figure")
    assert stages.count() == 5
    for i in range(5):  # every picture rendered, with its caption and alt text
        image = stages.nth(i).locator("img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        assert image.get_attribute("alt") and stages.nth(i).locator("figcaption").text_content()
    assert "centre of mass" in stages.nth(4).text_content()
    layers = page.locator("#inside-layers figure")
    assert layers.count() == 5 and "16 maps" in layers.nth(0).text_content()
    assert layers.nth(4).locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "576 numbers" in page.locator("#inside-features").text_content()
    toggle = page.locator("#inside-toggle button")
    assert toggle.count() == 2 and toggle.nth(0).text_content() == "Why a 7?"
    assert toggle.nth(0).get_attribute("aria-pressed") == "true"
    first = page.locator("#inside-overlay").get_attribute("src")
    runner_up = toggle.nth(1).text_content()
    assert re.fullmatch(r"Why not an? \d\?", runner_up), runner_up
    toggle.nth(1).focus()
    page.keyboard.press("Enter")  # keyboard works as well as the mouse
    assert toggle.nth(1).get_attribute("aria-pressed") == "true"
    assert page.locator("#inside-overlay").get_attribute("src") != first
    assert runner_up[-2] in page.locator("#inside-attribution-text").text_content()
    assert page.locator("#inside-overlay").evaluate("img => img.complete && img.naturalWidth > 0")
    page.locator("#inside").scroll_into_view_if_needed()
    shot(page, "desktop-inside-the-model")
    assert page.problems == []


def test_inside_the_model_on_a_phone_and_for_a_digit_of_a_number(browser, server, request):
    page = open_page(browser, server, request, **PHONE)
    draw_number(page, "38", 0.25, touch=True, size=0.6)
    expect_digit(page, "38")
    page.wait_for_function("() => document.querySelector('#inside-status').textContent.includes('digit 1 of 38')"
                           " && document.querySelector('#inside').dataset.state === 'ready'", timeout=15_000)
    assert page.locator("#inside-toggle button").nth(0).text_content() == "Why a 3?"
    page.locator("#chips button").nth(1).click()
    page.wait_for_function("() => document.querySelector('#inside-status').textContent.includes('digit 2 of 38')"
                           " && document.querySelector('#inside').dataset.state === 'ready'", timeout=15_000)
    assert page.locator("#inside-toggle button").nth(0).text_content() == "Why an 8?"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "horizontal overflow"
    page.locator("#inside").scroll_into_view_if_needed()
    shot(page, "phone-inside-the-model")
    assert page.problems == []


def stored_corrections(server) -> list[dict]:
    import requests

    from tests.conftest import OPERATOR_TOKEN

    response = requests.get(f"{server.url}/api/corrections?limit=500",
                            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)
    return response.json()["corrections"]


def expect_final(page, digit: int | str) -> None:
    """The page says `digit` for the finished drawing, not a live answer while drawing: Inside the
    model, which waits for the pen to lift, is showing."""
    expect_digit(page, digit)
    page.wait_for_function("() => document.querySelector('#inside').dataset.state === 'ready'", timeout=15_000)
    expect_digit(page, digit)


def thanked(page) -> None:
    """The page thanked the person for a correction (and did not say it failed)."""
    page.wait_for_function("() => /^(Thanks|The correction was not saved)/.test("
                           "document.querySelector('#correct-status').textContent)")
    assert page.locator("#correct-status").text_content().startswith("Thanks"), \
        page.locator("#correct-status").text_content()


def test_correct_a_wrong_digit_with_one_click(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 7)
    expect_final(page, 7)
    assert page.locator("#correct-question").text_content() == "Not a 7? It's a"
    assert page.locator("#correct-digits button").nth(7).is_disabled()
    preview = page.locator("#preview").get_attribute("src")
    with page.expect_request("**/api/corrections") as sent:
        page.locator("#correct-digits button").nth(1).click()
    body = sent.value.post_data_json
    assert (body["label"], body["predicted"]) == (1, 7)
    assert body["image"].startswith("data:image/png;base64,")
    thanked(page)
    assert page.locator("#correct-digits button").nth(1).get_attribute("aria-pressed") == "true"
    shot(page, "desktop-corrected")
    # Stored: the image the model saw, with the label given and the answer it corrects.
    newest = stored_corrections(server)[0]
    assert (newest["label"], newest["predicted"]) == (1, 7)
    stored, seen = (np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))), np.float32)
                    for url in (newest["field"], preview))
    assert np.abs(stored - seen).mean() < 0.03 * 255, "the field stored is the one the model saw"
    # Drawing goes on: the next drawing is read while the thanks are still showing.
    clear(page)
    assert page.locator("#correct").is_hidden()
    draw_with_mouse(page, 3)
    expect_digit(page, 3)
    assert page.problems == []


def test_correct_with_a_digit_key_and_per_digit_of_a_number(browser, server, request):
    page = open_page(browser, server, request)
    draw_with_mouse(page, 2)
    expect_final(page, 2)
    with page.expect_request("**/api/corrections") as sent:
        page.keyboard.press("5")
    assert sent.value.post_data_json["label"] == 5
    thanked(page)
    # The digit the model said is no correction: nothing is sent.
    page.keyboard.press("2")
    page.wait_for_timeout(200)
    assert page.locator("#correct-status").text_content().startswith("Thanks: saved as a 5")
    clear(page)

    set_brush(page, 10)
    draw_number(page, "38", 0.3)
    expect_final(page, "38")
    page.locator("#chips button").nth(1).click()
    assert page.locator("#correct-question").text_content() == "Digit 2 of 38: not an 8? It's a"
    with page.expect_request("**/api/corrections") as sent:
        page.locator("#correct-digits button").nth(9).click()
    body = sent.value.post_data_json
    assert (body["label"], body["predicted"]) == (9, 8)
    # The part of the drawing around the 8, not the whole number.
    image = Image.open(io.BytesIO(base64.b64decode(body["image"].split(",", 1)[1])))
    board = page.evaluate("[document.querySelector('#canvas').width, document.querySelector('#canvas').height]")
    assert image.width < board[0] / 2
    thanked(page)
    assert page.problems == []


def test_a_refused_correction_says_why_and_drawing_goes_on(browser, server, request):
    page = open_page(browser, server, request)
    page.route("**/api/corrections", lambda route: route.fulfill(
        status=429, content_type="application/json", headers={"Retry-After": "42"},
        body='{"error": "too many corrections from this client: at most 30 a minute"}'))
    draw_with_mouse(page, 4)
    expect_digit(page, 4)
    page.locator("#correct-digits button").nth(9).click()
    page.wait_for_function("() => document.querySelector('#correct-status').dataset.state === 'error'")
    assert "too many corrections" in page.locator("#correct-status").text_content()
    assert page.locator("#correct-digits button").nth(9).get_attribute("aria-pressed") == "false"
    clear(page)
    draw_with_mouse(page, 6)
    expect_digit(page, 6)
    page.problems[:] = [p for p in page.problems if "429" not in p]  # the browser logs the refused request
    assert page.problems == []


def test_operator_reviews_and_deletes_corrections(browser, server, request):
    import requests

    from tests.conftest import OPERATOR_TOKEN

    posted = requests.post(f"{server.url}/api/corrections", json={
        "image": base64.b64encode(encode(draw(4, canvas=(200, 200), angle=0.31))).decode(), "label": 9,
        "predicted": 4}, timeout=10).json()
    ctx = browser.new_context(**DESKTOP)
    request.addfinalizer(ctx.close)
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{server.url}/admin/corrections")
    page.wait_for_selector("body[data-ready='true']")
    page.locator("#token").fill("not the token")
    page.locator("#login button").click()
    page.wait_for_function("() => /not accepted/.test(document.querySelector('#review-status').textContent)")
    assert page.locator("#corrections li").count() == 0
    page.locator("#token").fill(OPERATOR_TOKEN)
    page.locator("#login button").click()
    card = page.locator("#corrections li").filter(has_text=f"#{posted['id']} ")
    card.wait_for()
    assert "Label 9 · model said 4" in card.text_content()
    assert card.locator("img").get_attribute("src").startswith("data:image/png;base64,")
    shot(page, "desktop-review")
    card.get_by_role("button", name=f"Delete correction {posted['id']}").click()
    page.wait_for_function("id => /Deleted correction/.test(document.querySelector('#review-status').textContent)",
                           arg=posted["id"])
    ids = [c["id"] for c in stored_corrections(server)]
    assert posted["id"] not in ids
    with page.expect_download() as download:
        page.locator("#export-npz").click()
    assert download.value.suggested_filename == "digitpad-corrections.npz"
    assert problems == []
