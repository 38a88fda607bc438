"""SmoothQuant (Xiao et al., 2023) for the int8 graph of a causal LM
(:mod:`polarity.backends.onnx_lm_graph`): a few input channels of a layer's products carry
activations tens of times larger than the rest, and with one int8 scale per row they squeeze
every other channel of that row into a few levels. Each such channel ``j`` is divided by
``s_j`` where the activation is made and the product's weight column multiplied by ``s_j``,
which computes the same function in float and moves the outlier into the weights, quantised
per output channel:

- the attention's q, k and v products: their RMS norm's weight divided, their columns multiplied;
- the MLP's gate and up products: likewise through the second RMS norm;
- the down product: the up product's rows divided (``silu(gate) * up`` is linear in ``up``).

``s_j = max|x_j| ** alpha / max|W[:, j]| ** (1 - alpha)``, the activation maxima measured once
on a few texts in their prompt (:func:`activation_maxima`). Measured on the accurate tier
(docs/qwen.md, "Smoothing"): SST-2 dev labels apart from the float32 graph 10 -> 4 at alpha 0.5,
at no cost per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Migration strength: half of an outlier's range moves into the weights.
ALPHA = 0.5
#: How many of the packaged curated texts measure the activation maxima.
CALIBRATION_TEXTS = 48
#: ``s`` is kept in this range (a dead channel is not scaled up without bound).
LIMITS = (1e-3, 1e3)
#: The products whose input is measured, and the products that share that input.
ATTENTION, MLP, DOWN = "self_attn.q_proj", "mlp.gate_proj", "mlp.down_proj"
GROUPS = {ATTENTION: ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
          MLP: ("mlp.gate_proj", "mlp.up_proj"), DOWN: ("mlp.down_proj",)}


def _product(name: str) -> tuple[str, str]:
    """``model.layers.3.mlp.gate_proj`` -> (``model.layers.3``, ``mlp.gate_proj``)."""
    layer, group, product = name.rsplit(".", 2)
    return layer, f"{group}.{product}"


def activation_maxima(folder: Path, tokenizer, texts: Sequence[str], max_length: int, *,
                      max_pad: int, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per input channel, ``max|x|`` of the inputs of every layer's q, gate and down products
    over all tokens the scoring prompt runs for ``texts`` (the prompt's head once, then each
    text's own tokens; padding left out), in calls of texts whose lengths differ by at most
    ``max_pad`` tokens. The weights are held in bfloat16; where the CPU
    has no bfloat16 products, each layer computes in float32 (:func:`_float32_layers`)."""
    import torch

    from polarity.backends.causal_lm import PrefixCache, after_head, load_base_lm
    from polarity.backends.ct2 import near_length_groups
    from polarity.cpu import bfloat16_products
    from polarity.prompt import prompt_pieces, scoring_ids_batch

    # loaded as stored, then cast one tensor at a time: loading straight into bfloat16 holds
    # both copies (a peak of 7.1 against 4.7 GiB for the 1.5B model)
    model = load_base_lm(folder, "float16").to(torch.bfloat16).eval()
    handles = [] if bfloat16_products() else _float32_layers(model.model.layers)
    maxima: dict[str, torch.Tensor] = {}
    real: list[torch.Tensor | None] = [None]  # the current call's mask of non-padding tokens

    def hook(name: str):
        def record(module, args):
            x = args[0].detach()
            rows = x[real[0].bool()] if real[0] is not None else x.reshape(-1, x.shape[-1])
            peak = rows.abs().amax(dim=0).float()
            maxima[name] = torch.maximum(maxima[name], peak) if name in maxima else peak
        return record

    handles += [module.register_forward_pre_hook(hook(name))
                for name, module in model.named_modules() if name.endswith((ATTENTION, MLP, DOWN))]
    try:
        pieces = prompt_pieces(tokenizer)
        prefix = PrefixCache(model, list(pieces.head))
        rows = scoring_ids_batch(tokenizer, pieces, list(texts), max_length)
        # few, near-equal-length calls: padding is computed for nothing (the 48 texts: 1,344
        # tokens, 5,568 in one call), and each call casts every layer (0.3 s a layer of 1.5B)
        with torch.inference_mode():
            for group in near_length_groups([len(r) for r in rows], batch_size, max_pad):
                batch = [rows[i] for i in group]
                ids, mask, position = after_head(batch, prefix.length, tokenizer.pad_token_id)
                real[0] = mask[:, prefix.length:]
                model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True,
                      logits_to_keep=1, **{prefix.argument: prefix.expand(len(batch))})
    finally:
        for handle in handles:
            handle.remove()
    return {name: value.numpy() for name, value in maxima.items()}


def _float32_layers(layers) -> list:
    """Hooks that run each decoder layer in float32 and hand bfloat16 on: only one layer's
    weights are float32 at a time (the 1.5B model's 6 GiB in float32 would not fit the memory
    the first use promises), and float32 products run 4-5x faster than bfloat16 on CPUs
    without AVX512-BF16 (96 against 21 GFLOPS on 2 cores of an AVX2 AMD EPYC)."""
    import torch

    def widen(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.float()
        return tuple(widen(v) for v in value) if isinstance(value, tuple) else value

    def before(module, args, kwargs):
        module.float()
        return widen(args), {key: widen(value) for key, value in kwargs.items()}

    def after(module, args, kwargs, output):
        module.to(torch.bfloat16)
        return output.to(torch.bfloat16)

    return [hook for layer in layers for hook in (
        layer.register_forward_pre_hook(before, with_kwargs=True),
        layer.register_forward_hook(after, with_kwargs=True))]


def smoothing_factors(tensors, maxima: dict[str, np.ndarray], alpha: float = ALPHA
                      ) -> dict[str, np.ndarray]:
    """``s`` for each measured product (keyed as ``maxima``), from the maxima and the largest
    weight of each input channel over the products that share that input."""
    factors = {}
    for name, amax in maxima.items():
        prefix, measured = _product(name)
        wmax = np.max([np.abs(tensors(f"{prefix}.{p}.weight").astype(np.float32)).max(axis=0)
                       for p in GROUPS[measured]], axis=0)
        s = np.power(np.maximum(amax, 1e-8), alpha) / np.power(np.maximum(wmax, 1e-8), 1 - alpha)
        s[(amax == 0) | (wmax == 0)] = 1.0
        factors[name] = np.clip(s, *LIMITS).astype(np.float32)
    return factors


class Smoothed:
    """``tensors`` (a name -> array reader) with ``factors`` folded in; every other tensor as
    it was. The float function of the model is unchanged (tested)."""

    def __init__(self, tensors, factors: dict[str, np.ndarray]):
        self.tensors = tensors
        self.rules: dict[str, list[tuple[str, np.ndarray]]] = {}
        for name, s in factors.items():
            prefix, measured = _product(name)
            # where the activation is made: the norm before the product, or the up rows
            if measured == ATTENTION:
                self._fold(f"{prefix}.input_layernorm.weight", "divide", s)
            elif measured == MLP:
                self._fold(f"{prefix}.post_attention_layernorm.weight", "divide", s)
            else:
                self._fold(f"{prefix}.mlp.up_proj.weight", "rows", s)
                self._fold(f"{prefix}.mlp.up_proj.bias", "divide", s)
            for product in GROUPS[measured]:
                self._fold(f"{prefix}.{product}.weight", "columns", s)

    def _fold(self, name: str, how: str, s: np.ndarray) -> None:
        self.rules.setdefault(name, []).append((how, s))

    def has(self, name: str) -> bool:
        return self.tensors.has(name)

    def __call__(self, name: str) -> np.ndarray:
        array = self.tensors(name)
        if name not in self.rules:
            return array
        array = array.astype(np.float32)
        for how, s in self.rules[name]:
            if how == "columns":
                array = array * s[None, :]
            elif how == "rows":
                array = array / s[:, None]
            else:
                array = array / s
        return array
