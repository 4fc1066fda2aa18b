"""Two "nodes" on this machine: `torchrun --nnodes=2` twice, one process each, meeting by c10d rendezvous (gloo).

Lightning sees torchrun's environment (TorchElasticEnvironment) and `trainer.num_nodes=2`: the same path a
multi-node job takes on a cluster, only with both nodes on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import FAST, FAST_SYNTHETIC
from tests.integration.test_training import LENGTH_REWARD


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_nodes_train_identical_weights_on_different_prompts(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}", "--rdzv_id=two-nodes"]  # fmt: skip
    train = ["-m", "audio_thinker.cli", "train", *FAST, *FAST_SYNTHETIC, "strategy=ddp", "trainer.num_nodes=2",
             "trainer.devices=1", "optimizer.lr=1e-2", *LENGTH_REWARD, f"hydra.run.dir={tmp_path}",
             "callbacks.model_checkpoint=null", "callbacks.export=null",
             "+callbacks.fingerprint._target_=tests.integration.fingerprint.WeightFingerprint"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = []
    for node in range(2):
        log = open(tmp_path / f"node{node}.log", "w")  # noqa: SIM115 (closed below)
        nodes.append((subprocess.Popen([*torchrun, *train], stdout=log, stderr=subprocess.STDOUT, env=env), log))
    for process, log in nodes:
        process.wait(timeout=900)
        log.close()
    outputs = [(tmp_path / f"node{node}.log").read_text()[-4000:] for node in range(2)]
    assert all(process.returncode == 0 for process, _ in nodes), "\n\n".join(outputs)
    rank0, rank1 = (torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["environment"] == rank1["environment"] == "TorchElasticEnvironment"  # torchrun's, via Lightning
    assert rank0["num_nodes"] == 2 and {rank0["node"], rank1["node"]} == {0, 1}
    assert rank0["step"] == rank1["step"] == 2
    assert rank0["initial"] != rank0["final"]  # the weights trained...
    assert rank0["final"] == rank1["final"]  # ...identically on both nodes
    assert rank0["examples"] and set(rank0["examples"]).isdisjoint(rank1["examples"])  # each its own prompts
