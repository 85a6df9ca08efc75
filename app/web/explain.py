"""POST /explain: for one drawing, how it was prepared, what each layer saw, what decided."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, current_app, g, jsonify, request

from app.core import explain as inside
from app.core.classifier import answer
from app.core.preprocess import to_png
from app.web import inputs
from app.web.api import data_url as _data_url

bp = Blueprint("explain", __name__)


@bp.post("/explain")
def explain():
    data = inputs.single_image(request)
    classifier = current_app.extensions["digitpad.classifier"]
    found = inside.explain(data, classifier, current_app.config["MAX_IMAGE_PIXELS"])
    result = answer(found.probabilities)
    g.digits = [result["digit"]]
    roles = ("the answer", "the runner-up")
    return jsonify({
        **result,
        "preview": _data_url(to_png(found.field)),
        "stages": [{"name": s.name, "caption": s.caption, "shape": list(s.image.shape),
                    "image": _data_url(to_png(inside.fit(s.image)))} for s in found.stages],
        "layers": [{"name": layer.name, "caption": layer.caption, "shape": list(layer.activations.shape),
                    "image": _data_url(to_png(inside.mosaic(layer.activations)))} for layer in found.layers],
        "features": {
            "caption": f"The {found.features.size} numbers the last layer reads: the final feature maps, flattened. "
                       "Each digit's score is a weighted sum of them.",
            "values": [round(float(v), 5) for v in found.features],
            "logits": [round(float(v), 5) for v in found.logits],
        },
        "attribution": {
            "method": "integrated gradients",
            "baseline": "a black (empty) field",
            "steps": max(a.steps for a in found.attributions),
            "tolerance": f"the sum is within {inside.COMPLETENESS:.0%} + {inside.SLACK} of the logit difference",
            "targets": [{
                "digit": a.digit,
                "role": role,
                "logit_difference": round(a.logit_difference, 6),
                "sum": round(float(a.values.sum()), 6),
                "delta": round(a.delta, 6),
                "values": np.round(a.values, 6).tolist(),
                "field": _data_url(inside.signed_png(a.values)),
                "drawing": _data_url(inside.signed_png(a.drawing, under=found.drawing, side=inside.OVERLAY_SIDE)),
            } for a, role in zip(found.attributions, roles)],
        },
        "model": classifier.info(),
    })

