"""Learning-rate schedule of a finetune: linear warmup, then cosine decay to a floor, stepped per batch.

Warmup matters most after pruning, when BN statistics and the cut layers no longer agree: full-size steps
on the first batches would throw away the pretrained weights the finetune is meant to keep.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int, final_ratio: float) -> float:
    """LR multiplier at `step` (0-based): (step + 1) / (warmup + 1) during warmup, then a cosine from 1 to
    final_ratio at the last step."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    decay_steps = max(total_steps - warmup_steps - 1, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int, final_ratio: float) -> LambdaLR:
    """A LambdaLR over warmup_cosine_factor; its state_dict (the step count) is what resume restores."""
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}), total >= 1")
    if not 0.0 <= final_ratio <= 1.0:
        raise ValueError(f"final_ratio must be in [0, 1], got {final_ratio}")
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps, final_ratio))
