"""int8 quantisation of the encoder graph whose scales do not depend on the batch, so a
text's answer does not depend on the other texts in its batch: fixed when the model is
exported, or (the FFN down-projections on request) computed from each token's own row.

Dynamic quantisation (what ``export --onnx`` did before) measures each activation's range on
the batch at hand: on SST-2 dev it changed 12 of 872 labels between batch sizes 1 and 32,
and the service's micro-batching put unrelated requests in one batch. Here the ranges are
measured once, on training texts (ONNX Runtime's calibration, QDQ format, per-channel
int8 weights), and stored as ``calibration.json`` (ONNX Runtime's range cache) beside the
graph, so a later export reuses them without the texts.

The FFN down-projections (a third of the products) have GELU inputs with outliers in a few
tokens that one fixed scale serves badly (quantised statically, the rest as shipped: SST-2
dev 0.8876 against float32's 0.9002 on the 1.2.0 default). They stay float (``down="float"``,
the default, as 1.2.0 ships), or run in int8 with one scale per token (``down="rows"``:
:mod:`polarity.int8_rows`, the scale computed in the graph from that token's row alone, so
the answer stays independent of the batch). Kept in float either way: the attention products
(both inputs are activations; about 1% of the work at tweet length) and the head.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import get_args

import numpy as np

from polarity.errors import InputError
from polarity.registry import DownProjections

CALIBRATION_FILE = "calibration.json"
CALIBRATION_TEXTS = 256


#: How the FFN down-projections run in an int8 export: float, or int8 with a scale per token.
DOWN_PROJECTIONS = get_args(DownProjections)


def float_nodes(model) -> list[str]:
    """Nodes the static quantiser leaves float: products of two activations, the head."""
    weights = {init.name for init in model.graph.initializer}
    return [node.name for node in model.graph.node if node.op_type == "Gemm" or (
        node.op_type == "MatMul" and not any(name in weights for name in node.input))]


def down_projections(model) -> list[str]:
    """The FFN down-projections' ``MatMul`` nodes: BertOutput.dense as torch's exporter
    names it (the attention's own output is "attention/output/dense")."""
    weights = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights
            and "output/dense" in n.name and "attention" not in n.name]


def down_projections_per_row(model) -> int:
    """Rewrite ``model`` in place: each FFN down-projection as an int8 product with one scale
    per token (:func:`polarity.int8_rows.rewrite_matmuls`; weights in the range every x86
    CPU sums exactly, so one export serves every host). Returns how many were rewritten."""
    from polarity.int8_rows import rewrite_matmuls

    names = set(down_projections(model))
    if not names:
        raise InputError("--int8-down-projections rows found no FFN down-projection in this "
                         "graph (a BERT-style encoder's output/dense MatMul); export with "
                         "float down-projections")
    try:
        return rewrite_matmuls(model, names)
    except ValueError as exc:
        raise InputError(f"--int8-down-projections rows: {exc}") from exc


def token_feeds(tokenizer, texts: Sequence[str], max_length: int) -> list[dict]:
    """Graph inputs for calibration, one text at a time (no padding enters the ranges)."""
    return [{k: v.astype(np.int64) for k, v in tokenizer(
        [text], truncation=True, max_length=max_length, return_tensors="np").items()
        if k in ("input_ids", "attention_mask")} for text in texts]


def _reader(feeds: Sequence[dict]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    return Reader()


def quantize_static_int8(source: Path, target: Path, ranges: Path,
                         feeds: Sequence[dict] | None = None,
                         down: DownProjections = "float") -> bool:
    """``source`` (float ONNX) -> ``target`` (int8). Reuses the ranges in ``ranges`` when
    that file exists and fits the graph; otherwise measures them on ``feeds`` (the graph's
    inputs for calibration texts) and writes ``ranges``. Returns whether they were
    measured. ``down`` is one of :data:`DOWN_PROJECTIONS`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if down not in DOWN_PROJECTIONS:
        raise InputError(f"down-projections {down!r}; choose one of "
                         f"{', '.join(DOWN_PROJECTIONS)}")

    def rewritten():
        model = onnx.load(str(source))
        if down == "rows":
            down_projections_per_row(model)
        return model

    model = rewritten()
    reader = _reader(feeds) if feeds else None
    options = dict(quant_format=QuantFormat.QDQ, per_channel=True,
                   weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                   # u8 x s8 products saturate on CPUs without VNNI unless weights use 7 bits
                   reduce_range=True, op_types_to_quantize=["MatMul", "Gemm"],
                   nodes_to_exclude=float_nodes(model) + down_projections(model))
    measured = not ranges.is_file()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs generic advice on the root logger
    try:
        quantize_static(model, str(target), reader, calibration_cache_path=ranges, **options)
        return measured
    except ValueError as exc:
        if not feeds:
            raise InputError(f"the int8 calibration ranges in {ranges} do not fit this export "
                             f"({exc}); pass training texts with --calibration-file") from exc
        ranges.unlink(missing_ok=True)  # made for another graph: measure them again
        quantize_static(rewritten(), str(target), reader, calibration_cache_path=ranges, **options)
        return True
    finally:
        root.setLevel(level)


def sample_texts(rows: Iterable[str], n: int = CALIBRATION_TEXTS, seed: int = 0) -> list[str]:
    """A fixed sample of ``n`` texts: the same file always gives the same ranges."""
    texts = [t for t in rows if isinstance(t, str) and t.strip()]
    random.Random(seed).shuffle(texts)
    return texts[:n]
