"""Serves an XGBoost model over HTTP: the replica of a moon service.

Loads ``--model`` with XGBoost's own loading code (a path in ``--store``, as
examples/xgboost/train.py saves it there, or a local file) and listens on
``$PORT``, which moon gives every replica:

- ``GET /healthz`` answers 200 once the model is loaded (the service's readiness);
- ``POST /predict`` takes ``{"rows": [[f0, f1, ...], ...]}`` and answers
  ``{"predictions": [p0, p1, ...], "replica": "<pid>"}``, each the model's
  probability of the positive class.

    PORT=8080 python examples/xgboost/serve.py --model /tmp/xgb-models/model-0.json
    curl -s localhost:8080/predict -d '{"rows": [[0, 0, 0, 0, 0, 0, 0, 0]]}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import xgboost as xgb

import moon.storage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", required=True, help="the model: a local file, or a path in --store"
    )
    parser.add_argument("--store", help="the store URL the model is in")
    return parser.parse_args(argv)


def load(model: str, store: str | None) -> xgb.Booster:
    booster = xgb.Booster()
    if store:
        booster.load_model(bytearray(moon.storage.open(store).get(model)))
    else:
        booster.load_model(model)
    # One thread: replicas share the machine's cores, and requests are small.
    booster.set_param({"nthread": 1})
    return booster


def handler(booster: xgb.Booster) -> type[BaseHTTPRequestHandler]:
    class Predict(BaseHTTPRequestHandler):
        # Keep-alive, so that moon's proxy reuses its connections.
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self.answer(HTTPStatus.OK, {"ok": True})
            else:
                self.answer(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/predict":
                self.answer(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})
                return
            try:
                rows = np.asarray(json.loads(body)["rows"], dtype=np.float32)
                if rows.ndim != 2 or rows.shape[1] != booster.num_features():
                    raise ValueError(
                        f"rows must be a list of lists of {booster.num_features()} numbers"
                    )
            except (ValueError, KeyError, TypeError) as error:
                self.answer(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            predictions = booster.inplace_predict(rows)
            self.answer(
                HTTPStatus.OK,
                {"predictions": [float(p) for p in predictions], "replica": str(os.getpid())},
            )

        def answer(self, status: HTTPStatus, document: dict) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would drown the service's logs

    return Predict


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    booster = load(args.model, args.store)
    port = int(os.environ["PORT"])
    # Loopback, where the local backend's proxy reaches its replicas; in a pod, HOST=0.0.0.0.
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), port), handler(booster))
    print(f"serving {args.model} ({booster.num_features()} features) on port {port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
