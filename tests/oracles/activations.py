"""activations: torch.sigmoid / torch.tanh / torch.relu with autograd for the slopes and the backward step."""

from __future__ import annotations

import torch

from ..conftest import as_float


def _t(row) -> torch.Tensor:
    return torch.tensor([[as_float(x) for x in r] for r in row], dtype=torch.float64)


def oracle(given, facts, options):
    h = _t(given["h"])
    out = {}
    functions = {"sigmoid": [("s", torch.sigmoid)], "tanh": [("t", torch.tanh)]}
    chosen = functions["sigmoid"] + functions["tanh"] if options["function"] == "both" else functions[options["function"]]
    if options["relu"] == "yes":
        chosen.append(("r", torch.relu))
    for name, fn in chosen:
        # The slope: autograd of the sum (each entry's own derivative); ∂L/∂h: backward with the upstream gradient.
        leaf = h.clone().requires_grad_(True)
        fn(leaf).sum().backward()
        slope = leaf.grad.clone()
        leaf = h.clone().requires_grad_(True)
        value = fn(leaf)
        value.backward(_t(given["g_t" if name == "t" and "g_t" in given else "g"]))
        if name == "r":
            out["r_slope"] = slope
        else:
            out[name] = value.detach()
            out[f"{name}_slope"] = slope
        out[f"dh_{name}"] = leaf.grad
    return out
