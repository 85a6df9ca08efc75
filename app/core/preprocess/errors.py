"""What goes wrong with an image, said so that the sender can act on it."""

from __future__ import annotations


class ImageError(ValueError):
    """An image we cannot use, with the HTTP status that fits and a message for the user."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NoDigitError(ImageError):
    """A readable image with no digit in it: blank, or only specks and faint marks."""

    status = 422

    def __init__(self, message: str = "no digit found") -> None:
        super().__init__(message)
