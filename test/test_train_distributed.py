"""Two torchrun processes on the gloo backend train one model: both end with identical weights.

The test starts `python -m torch.distributed.run` on this very file; run as a script, the file is the
worker that every rank executes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
               str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    started = [torch.load(tmp_path / f"start{r}.pt", weights_only=True) for r in (0, 1)]
    name = "layers.0.conv.weight"
    assert not torch.equal(started[0][name], started[1][name])  # each rank began from its own random init
    assert not torch.equal(ranks[0][name], started[0][name])  # and they trained
    for key, value in ranks[0].items():
        assert torch.equal(ranks[1][key], value), key
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "log.csv").is_file()


def _worker(out: Path) -> None:
    """One rank: its own random init (DDP must broadcast rank 0's), a few steps on synthetic scenes."""
    from test_train_finetune import scenes, small_demo

    from yolo_compress.train.finetune import FinetuneConfig, finetune

    rank = int(os.environ["RANK"])
    model = small_demo(seed=rank)
    torch.save(model.state_dict(), out / f"start{rank}.pt")
    data = scenes(8)
    config = FinetuneConfig(epochs=1, lr=0.01, batch=4, ema=True, device="cpu", workers=0, progress=False)
    result = finetune(model, list(data.names), data, data, config, out / "run")
    torch.save(result.model.state_dict(), out / f"rank{rank}.pt")


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
