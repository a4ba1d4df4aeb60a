"""optimizer_race: torch.optim.SGD, SGD(momentum=0.9) and Adam(betas=(0.9, 0.999), eps=0) fed the sheet's gradients."""

from __future__ import annotations

import torch

from ..conftest import as_float


def t(value) -> torch.Tensor:
    return torch.tensor([[as_float(x) for x in row] for row in value], dtype=torch.float64)


def oracle(given, facts, options):
    """Each optimizer from θ₀ with the given gradient rows; m and v read from Adam's state, m̂ and v̂ from them."""
    steps = int(options["steps"])
    lr, beta1, beta2 = as_float(facts["lr"]), as_float(facts["beta1"]), as_float(facts["beta2"])
    makers = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
        "mom": lambda p: torch.optim.SGD(p, lr=lr, momentum=as_float(facts["momentum"])),
        "adam": lambda p: torch.optim.Adam(p, lr=lr, betas=(beta1, beta2), eps=as_float(facts["eps"])),
    }
    out = {}
    for name, make in makers.items():
        theta = t(given["theta0"]).requires_grad_(True)
        optimizer = make([theta])
        for step in range(1, steps + 1):
            theta.grad = t(given[f"g{step}"])
            optimizer.step()
            out[f"{name}{step}"] = theta.detach().clone()
            state = optimizer.state[theta]
            if name == "mom":
                out[f"b{step}"] = state["momentum_buffer"].clone()
            if name == "adam":
                out[f"m{step}"], out[f"v{step}"] = state["exp_avg"].clone(), state["exp_avg_sq"].clone()
                out[f"m_hat{step}"] = out[f"m{step}"] / (1 - beta1 ** step)
                out[f"v_hat{step}"] = out[f"v{step}"] / (1 - beta2 ** step)
    return out
