"""Which parameters make up a layer's gradient norm."""

from __future__ import annotations

import numpy as np


def layer_of(param_name: str) -> str:
    """The layer (module) a parameter belongs to: ``"net.0.weight"`` -> ``"net.0"``; ``"root"`` for the
    parameters of the top module itself.

    Example:
        >>> layer_of("net.0.weight"), layer_of("scale")
        ('net.0', 'root')
    """
    return param_name.rsplit(".", 1)[0] if "." in param_name else "root"


def layer_membership(names: list[str], dims: list[int], layers: list[str]) -> np.ndarray:
    """A (parameters x layers) 0/1 matrix: which parameters make up each layer's gradient norm.

    A layer's norm covers its weight matrices (parameters of two or more dimensions); biases and gains
    join only in layers that have nothing else (LayerNorm, BatchNorm). A bias gradient measures the
    output error directly, so it stays large at a saddle and would hide a stalled weight.

    Example:
        >>> layer_membership(["a.weight", "a.bias", "n.weight"], [2, 1, 1], ["a", "n"]).tolist()
        [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    """
    col = {name: i for i, name in enumerate(layers)}
    has_weight = {layer_of(n) for n, d in zip(names, dims, strict=True) if d >= 2}
    member = np.zeros((len(names), len(layers)))
    for i, (n, d) in enumerate(zip(names, dims, strict=True)):
        if d >= 2 or layer_of(n) not in has_weight:
            member[i, col[layer_of(n)]] = 1.0
    return member
