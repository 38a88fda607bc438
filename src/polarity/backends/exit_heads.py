"""The PyTorch side of early exits (:mod:`polarity.backends.exits`): the exit heads, one
pass that gives every head's logits for training, and the encoder cut into stages for
inference and ONNX export."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from polarity.backends.exits import ExitPlan, StageRunner, stages


def exit_heads(layers: list[int], hidden: int) -> nn.ModuleDict:
    return nn.ModuleDict({str(layer): nn.Linear(hidden, 2) for layer in layers})


def pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the tokens."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def all_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor
               ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Training: the final logits and each exit's, from one pass with every hidden state."""
    out = model.encoder(input_ids=input_ids, attention_mask=attention_mask,
                        output_hidden_states=True)
    final = model.head(model.dropout(pool(out.last_hidden_state, attention_mask)))
    # hidden_states[0] is the embedding output, hidden_states[k] the output of layer k.
    exits = {int(k): head(model.dropout(pool(out.hidden_states[int(k)], attention_mask)))
             for k, head in model.exits.items()}
    return final, exits


def layer_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive ``[batch, 1, 1, tokens]`` mask a transformer layer takes."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class Stage(nn.Module):
    """Stage ``i`` of a merged encoder: (embeddings and) its layers, pooling and the head of
    its exit (the final head for the last stage). Runs in PyTorch and exports to ONNX."""

    def __init__(self, model, plan: ExitPlan, i: int):
        super().__init__()
        blocks = model.encoder.encoder.layer
        start, end = stages(plan, len(blocks))[i]
        self.embeddings = model.encoder.embeddings if i == 0 else None
        self.blocks = nn.ModuleList(blocks[start:end])
        self.head = model.head if i == len(plan.layers) else model.exits[str(end)]

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.embeddings(input_ids=x) if self.embeddings is not None else x
        additive = layer_mask(attention_mask, hidden.dtype)
        for block in self.blocks:
            hidden = block(hidden, additive)
        return hidden, self.head(pool(hidden, attention_mask))


def torch_stage_runner(model, plan: ExitPlan) -> StageRunner:
    """The stages of a merged encoder in PyTorch."""
    parts = [Stage(model, plan, i) for i in range(len(plan.layers) + 1)]

    @torch.inference_mode()
    def run(i: int, x, attention_mask: np.ndarray):
        x = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        hidden, logits = parts[i](x, torch.from_numpy(attention_mask))
        return hidden, logits.float().numpy()

    return run
