"""Predict digits (or whole numbers) in local image files, without a server.

    python -m app.predict digit.png photo.jpg
    python -m app.predict --json *.png
    python -m app.predict --number photo.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.core import segment
from app.core.classifier import Classifier, NumberReader, answer
from app.core.preprocess import ImageError, preprocess
from app.core.runtime import RUNTIMES
from model.checkpoint import DEFAULT_WEIGHTS, ModelError

MAX_DIGITS = 64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.predict", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, GIF, BMP)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    parser.add_argument("--number", action="store_true", help="read a whole number (several digits) in each image")
    parser.add_argument("--model", type=Path, default=DEFAULT_WEIGHTS, help="weights file (default: shipped)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--runtime", default="auto", choices=RUNTIMES,
                        help="auto: ONNX Runtime on the CPU, PyTorch on CUDA; torch: PyTorch everywhere")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model, args.device, args.runtime)
        reader = NumberReader.load(classifier, device=args.device, runtime=args.runtime) if args.number else None
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    results = numbers(args.files, reader) if reader else digits(args.files, classifier)
    for path in args.files:
        result = results[path]
        if args.json:
            print(json.dumps({"file": str(path), **result}))
        elif "error" in result:
            print(f"{path}: error: {result['error']}")
        else:
            print(f"{path}: {result['number'] if reader else result['digit']} ({result['confidence']:.1%})")
    return 1 if any("error" in r for r in results.values()) else 0


def digits(files: list[Path], classifier: Classifier) -> dict[Path, dict]:
    """One digit per file, all read in one model call."""
    fields, results = {}, {}
    for path in files:
        try:
            fields[path] = preprocess(path.read_bytes())
        except OSError as exc:
            results[path] = {"error": f"cannot read file: {exc.strerror}"}
        except ImageError as exc:
            results[path] = {"error": exc.message}
    if fields:
        probabilities = classifier.probabilities(np.stack(list(fields.values())))
        results.update(zip(fields, map(answer, probabilities)))
    return results


def numbers(files: list[Path], reader: NumberReader) -> dict[Path, dict]:
    """A whole number per file, digits left to right, with where each digit is."""
    results = {}
    for path in files:
        try:
            found = segment.read_image(path.read_bytes(), reader, MAX_DIGITS)
        except OSError as exc:
            results[path] = {"error": f"cannot read file: {exc.strerror}"}
            continue
        except ImageError as exc:
            results[path] = {"error": exc.message}
            continue
        results[path] = segment.answer(found)
    return results


if __name__ == "__main__":
    sys.exit(main())
