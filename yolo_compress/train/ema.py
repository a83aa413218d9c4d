"""Exponential moving average of a model's weights, the copy that is validated and saved.

The decay ramps up from 0 (ultralytics' form, decay * (1 - exp(-updates / ramp))): a few-epoch finetune
between pruning steps is a few hundred updates, and a full 0.9999 from the start would leave the
average stuck near the weights the finetune began from.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

DEFAULT_DECAY = 0.9999
DEFAULT_RAMP = 2000


class ModelEMA:
    """`module` is the averaged copy (eval mode, no gradients); BN running statistics are copied as they are."""

    def __init__(self, model: nn.Module, decay: float = DEFAULT_DECAY, ramp: float = DEFAULT_RAMP):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.ramp = ramp
        self.updates = 0

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward `model`'s current weights (call after each optimizer step)."""
        self.updates += 1
        decay = self.current_decay()
        current = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(current[name].detach(), alpha=1.0 - decay)
            else:
                value.copy_(current[name])

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
