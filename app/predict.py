"""Predict digits in local image files, without a server.

    python -m app.predict digit.png photo.jpg
    python -m app.predict --json *.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.classifier import Classifier, answer
from app.preprocess import ImageError, preprocess
from model.checkpoint import DEFAULT_WEIGHTS, ModelError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.predict", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="image files (PNG, JPEG, WebP, GIF, BMP)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    parser.add_argument("--model", type=Path, default=DEFAULT_WEIGHTS, help="weights file (default: shipped)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    try:
        classifier = Classifier(args.model, args.device)
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    fields, results = {}, {}
    for path in args.files:
        try:
            fields[path] = preprocess(path.read_bytes())
        except OSError as exc:
            results[path] = {"error": f"cannot read file: {exc.strerror}"}
        except ImageError as exc:
            results[path] = {"error": exc.message}
    if fields:
        probabilities = classifier.probabilities(np.stack(list(fields.values())))
        results.update(zip(fields, map(answer, probabilities)))

    for path in args.files:
        result = results[path]
        if args.json:
            print(json.dumps({"file": str(path), **result}))
        elif "error" in result:
            print(f"{path}: error: {result['error']}")
        else:
            print(f"{path}: {result['digit']} ({result['confidence']:.1%})")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
