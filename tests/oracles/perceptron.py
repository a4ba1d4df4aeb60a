"""perceptron: the step of w·x + b and the rule w ← w + η(y − ŷ)x, b ← b + η(y − ŷ), recomputed with torch tensors."""

from __future__ import annotations

import torch

from ..conftest import as_float


def _t(value) -> torch.Tensor:
    if isinstance(value, list):
        return torch.tensor([[as_float(x) for x in row] for row in value], dtype=torch.float64)
    return torch.tensor(as_float(value), dtype=torch.float64)


def _step(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, eta: float):
    """One example: the score, the prediction (1 only for a positive score), and the updated w and b."""
    z = torch.dot(w, x) + b
    yhat = torch.heaviside(z, torch.tensor(0.0, dtype=torch.float64))  # a score of exactly 0 predicts 0
    error = y - yhat
    return z, yhat, w + eta * error * x, b + eta * error


def oracle(given, facts, options):
    eta = as_float(facts["eta"])
    w, b = _t(given["w"])[0], _t(given["b"])
    if options["steps"] == "1":
        x = _t(given["x"])[0]
        z, yhat, w_new, b_new = _step(w, b, x, _t(given["y"]), eta)
        assert yhat != _t(given["y"])  # the example is misclassified: an update happens
        return {"z": z.item(), "yhat": yhat.item(), "w_new": w_new.unsqueeze(0), "b_new": b_new.item(),
                "z_new": (torch.dot(w_new, x) + b_new).item()}
    points, labels = _t(given["X"]), _t(given["y"])[:, 0]
    rows = []
    for x, y in zip(points, labels):
        z, yhat, w, b = _step(w, b, x, y, eta)
        rows.append(torch.stack([z, yhat, w[0], w[1], b]))
    return {"table": torch.stack(rows)}
