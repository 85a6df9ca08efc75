"""The naive reference server, for bench/serve.py only: Flask under gunicorn, the whole image
resized to 28x28, the textbook model. It is what digitpad is compared against, not a product.

    gunicorn "bench.naive_server:create_app()"
"""

from __future__ import annotations

import torch
from flask import Flask, jsonify, request

from bench.textbook import load_or_train, naive_preprocess


def create_app() -> Flask:
    torch.set_num_threads(1)
    app = Flask(__name__)
    net = load_or_train()

    @app.post("/predict")
    def predict():
        x = torch.from_numpy(naive_preprocess(request.get_data()))[None, None]
        with torch.inference_mode():
            probabilities = torch.softmax(net(x), 1)[0]
        return jsonify({"digit": int(probabilities.argmax()), "probabilities": probabilities.tolist()})

    return app
