"""Batch-norm statistics in a finetune: recompute them for the weights as they are now ("precise BN",
Wu & Johnson 2021), or freeze them.

BN's running statistics are a moving average over past batches, computed with past weights: while the
weights still move (training from scratch, the first epochs after a pruning step) they lag behind, and
the eval-mode model that is validated and exported is worse than the one being trained. A few forward
passes with the final weights replace that average with the exact statistics of those weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device) -> int:
    """Set every BatchNorm's running mean and variance to their average over `batches` (images [B,3,H,W]);
    returns the number of batches seen. Everything else runs in eval mode (dropout off, as at inference)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    was_training = model.training
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches
        bn.train()
    seen = 0
    try:
        for images in batches:
            model(images.to(device))
            seen += 1
    finally:
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum
        model.train(was_training)
    return seen


def freeze_bn_stats(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode (normalize with, and never update, the running statistics) in an
    otherwise training model; call after model.train(), which would undo it."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
