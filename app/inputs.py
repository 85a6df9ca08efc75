"""Getting image bytes out of a request, in any of the forms the API accepts."""

from __future__ import annotations

import base64
import binascii
import re

from flask import Request

from app.preprocess import ImageError

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


def _json_body(request: Request) -> dict:
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


def single_image(request: Request) -> bytes:
    """The one image of a /predict request."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        body = _json_body(request)
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
        body = _json_body(request)
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
