"""PyTorch's mse_loss (reduction mean or sum) and autograd for mse; the ½ convention as ½·Σ(ŷ − y)²."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..conftest import as_float


def _tensor(value) -> torch.Tensor:
    return torch.tensor([[as_float(x) for x in row] for row in value], dtype=torch.float64)


def oracle(given, facts, options):
    y = _tensor(given["y"])
    y_hat = _tensor(given["y_hat"]).requires_grad_(True)
    loss = F.mse_loss(y_hat, y, reduction=options["reduction"])
    loss.backward()
    y_hat_half = _tensor(given["y_hat"]).requires_grad_(True)
    half = 0.5 * F.mse_loss(y_hat_half, y, reduction="sum")
    half.backward()
    ratios = y_hat.grad / y_hat_half.grad
    assert torch.allclose(ratios, ratios[0, 0].expand_as(ratios)), "one k for every entry"
    return {"e": (y_hat - y).detach(), "L": loss.item(), "dy_hat": y_hat.grad, "L_half": half.item(),
            "dy_hat_half": y_hat_half.grad, "k": ratios[0, 0].item()}
