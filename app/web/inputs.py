"""Getting image bytes (or the page's strokes) out of a request, in any of the forms the API accepts."""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re

import numpy as np
from flask import Request
from werkzeug.datastructures import MultiDict

from app.core.preprocess import ImageError
from app.core.strokes import Strokes

MAX_CANVAS_SIDE = 10_000
MAX_STROKES = 2_000
MAX_POINTS = 100_000
MAX_TIME = 1e15  # a point's t, in ms: any time a clock gives

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)
_WHITESPACE = re.compile(r"\s+")


class RequestError(ImageError):
    """A request the API cannot read; same shape as an ImageError so one handler serves both."""


def decode_base64(value: object, what: str = "image") -> bytes:
    """A data URL or bare base64 string -> bytes."""
    if not isinstance(value, str):
        raise RequestError(f"'{what}' must be a string: a data URL or base64, not {type(value).__name__}")
    match = _DATA_URL.match(value)
    if match:
        if not match.group("b64"):
            raise RequestError(f"'{what}' is a data URL without ';base64'; only base64 data URLs are accepted")
        value = value[match.end():]
    try:
        data = base64.b64decode(_WHITESPACE.sub("", value), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"'{what}' is not valid base64") from None
    if not data:
        raise RequestError(f"'{what}' is empty")
    return data


def json_body(request: Request) -> dict:
    """The request's JSON object; a RequestError that says why when there is none."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # thousands of nested brackets: the parser gives up, and so do we
        raise RequestError("the JSON body is nested too deeply") from None
    if body is None:
        raise RequestError("the request body is not valid JSON")
    if not isinstance(body, dict):
        raise RequestError("the JSON body must be an object, like {\"image\": \"data:image/png;base64,...\"}")
    return body


def _unsupported(request: Request) -> RequestError:
    got = request.mimetype or "none"
    return RequestError(f"unsupported Content-Type {got!r}: send application/json, multipart/form-data "
                        "with a file field 'image', or the image itself as image/*", 415)


def _number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{what} must be a number")
    if not low <= value <= high:
        raise RequestError(f"{what} must be between {low:g} and {high:g}, not {value:g}")
    return float(value)


def strokes(body: dict) -> Strokes:
    """The page's strokes: {"canvas": {"width", "height"}, "brush": px, "strokes": [[[x, y, t], ...], ...]}."""
    canvas = body.get("canvas")
    if not isinstance(canvas, dict):
        raise RequestError("'canvas' must be an object {\"width\": ..., \"height\": ...} in pixels")
    width = _number(canvas.get("width"), "canvas.width", 1, MAX_CANVAS_SIDE)
    height = _number(canvas.get("height"), "canvas.height", 1, MAX_CANVAS_SIDE)
    brush = _number(body.get("brush", 0.04 * max(width, height)), "brush", 0.5, max(width, height))
    paths = body["strokes"]
    if not isinstance(paths, list) or not paths:
        raise RequestError("'strokes' must be a non-empty list of strokes, each a list of [x, y, t] points")
    if len(paths) > MAX_STROKES:
        raise RequestError(f"too many strokes: {len(paths)} (the limit is {MAX_STROKES})", 413)
    out, total, limits = [], 0, _limits(width, height)
    for i, path in enumerate(paths):
        if not isinstance(path, list) or not path:
            raise RequestError(f"strokes[{i}] must be a non-empty list of [x, y, t] points")
        total += len(path)
        if total > MAX_POINTS:
            raise RequestError(f"too many points in the strokes (the limit is {MAX_POINTS})", 413)
        points = _plain_path(path, limits)
        out.append(points if points is not None else _path(path, i, limits))
    return Strokes(round(width), round(height), brush, out)


def _limits(width: float, height: float) -> tuple[tuple[float, float], ...]:
    """The range of a point's x, y and t: the canvas, and as much again on every side of it."""
    return (-width, 2 * width), (-height, 2 * height), (-MAX_TIME, MAX_TIME)


def _plain_path(path: list, limits: tuple[tuple[float, float], ...]) -> np.ndarray | None:
    """A stroke's [x, y] points, if every point is plainly good (all [x, y, t] or all [x, y], plain
    numbers within `limits`); None if any is not, for `_path` to say which.

    The page sends hundreds of points a number, live as the pen moves: checked all at once, they
    cost a third of checking and naming each in turn."""
    if set(map(type, path)) != {list} or not set(map(type, itertools.chain.from_iterable(path))) <= {int, float}:
        return None  # (a bool's type is bool, not int: true is not a coordinate)
    try:
        points = np.array(path, np.float64)
    except ValueError:  # points of different lengths
        return None
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        return None
    low, high = np.array(limits[:points.shape[1]]).T
    if not ((points >= low) & (points <= high)).all():  # NaN and infinity are outside too
        return None
    return points[:, :2].astype(np.float32)


def _path(path: list, i: int, limits: tuple[tuple[float, float], ...]) -> np.ndarray:
    """A stroke's [x, y] points, checked one by one: the first bad one is named in the error."""
    points = []
    for j, point in enumerate(path):
        if not isinstance(point, list) or len(point) not in (2, 3):
            raise RequestError(f"strokes[{i}][{j}] must be [x, y] or [x, y, t]")
        points.append([_number(point[0], f"strokes[{i}][{j}][0]", *limits[0]),
                       _number(point[1], f"strokes[{i}][{j}][1]", *limits[1])])
        if len(point) == 3:
            _number(point[2], f"strokes[{i}][{j}][2]", *limits[2])
    return np.array(points, np.float32)


def number_source(request: Request) -> tuple[bytes | None, Strokes | None]:
    """What a /predict/number request holds: image bytes, the page's strokes, or both."""
    if request.mimetype == "application/json":
        body = json_body(request)
        if "strokes" in body:
            return (decode_base64(body["image"]) if "image" in body else None), strokes(body)
    return single_image(request), None


def single_image(request: Request) -> bytes:
    """The one image of a /predict request."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        body = json_body(request)
        if "image" not in body:
            raise RequestError("missing field 'image' in the JSON body")
        return decode_base64(body["image"])
    if mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise RequestError("missing file field 'image' in the form")
        return upload.read()
    if mimetype.startswith("image/"):
        return request.get_data(cache=False)
    raise _unsupported(request)


def batch_items(request: Request) -> list[bytes | str]:
    """The items of a /predict/batch request: bytes, or base64 strings decoded item by item later."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        body = json_body(request)
        if "images" not in body:
            raise RequestError("missing field 'images' in the JSON body")
        images = body["images"]
        if not isinstance(images, list):
            raise RequestError("'images' must be a list of data URLs or base64 strings")
        # A value of the wrong type is a malformed request; an undecodable image is one bad item.
        wrong = next((i for i, item in enumerate(images) if not isinstance(item, str)), None)
        if wrong is not None:
            raise RequestError(f"'images[{wrong}]' must be a string: a data URL or base64, "
                               f"not {type(images[wrong]).__name__}")
        return images
    if mimetype == "multipart/form-data":
        return [upload.read() for upload in request.files.getlist("image")]
    raise _unsupported(request)


def _digit(body: dict, name: str, *, required: bool) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise RequestError(f"missing field '{name}': the digit, 0 to 9, that the image really shows")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise RequestError(f"'{name}' must be a whole number from 0 to 9, not {value!r:.40}")
    return value


def correction(request: Request) -> tuple[bytes, int, int | None]:
    """A correction's image bytes, the label its author gave, and what the model had said (if sent)."""
    if request.mimetype != "application/json":
        raise RequestError(f"unsupported Content-Type {request.mimetype or 'none'!r}: send application/json "
                           "like {\"image\": \"data:image/png;base64,...\", \"label\": 7}", 415)
    body = json_body(request)
    label = _digit(body, "label", required=True)
    predicted = _digit(body, "predicted", required=False)
    if "image" not in body:
        raise RequestError("missing field 'image' in the JSON body")
    return decode_base64(body["image"]), label, predicted


def whole_number(args: MultiDict, name: str, default: int, low: int, high: int) -> int:
    """A query parameter that must be a whole number in [low, high], given at most once."""
    values = args.getlist(name)
    if not values:
        return default
    if len(values) > 1:
        raise RequestError(f"'{name}' is given {len(values)} times; give it once")
    try:
        number = int(values[0])
    except ValueError:
        raise RequestError(f"'{name}' must be a whole number, not {values[0]!r:.40}") from None
    if not low <= number <= high:
        raise RequestError(f"'{name}' must be between {low} and {high}, not {number}")
    return number
