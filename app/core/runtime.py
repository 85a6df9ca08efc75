"""Running a network for inference: ONNX Runtime on the CPU, PyTorch on CUDA.

At the batch sizes the service runs (one drawing; the few dozen pieces of a number) PyTorch's
eager CPU kernels spend most of their time around the arithmetic rather than in it: ONNX
Runtime runs the same network about three times as fast (the digit classifier at batch 1:
0.11 against 0.28-0.36 ms; 37 pieces: 3.5 against 9.6 ms), to within 1e-6 of the same logits.
The weights stay the verified safetensors file: the ONNX graph is exported from the loaded
network in memory when the service starts, never read from disk.
"""

from __future__ import annotations

import io
import os
import warnings
import weakref
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import onnxruntime

RUNTIMES = ("auto", "torch")  # auto: ONNX Runtime on the CPU, PyTorch on CUDA

_runners: weakref.WeakSet[Runner] = weakref.WeakSet()  # every Runner of this process, for open_sessions


class Runner:
    """One network ready to run on batches: (N, 1, H, W) float32 images -> its float32 outputs,
    as a CPU tensor. `width_varies` for a network that reads lines of any width."""

    def __init__(self, net: nn.Module, device: torch.device, runtime: str = "auto",
                 example: tuple[int, ...] = (1, 1, 28, 28), width_varies: bool = False) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}: use {' or '.join(RUNTIMES)}")
        self.device = device
        # Channels-last suits PyTorch's convolution kernels: a third faster at batch size 1 on the CPU.
        self.net = net.eval().to(device=device, memory_format=torch.channels_last)
        use_onnx = runtime == "auto" and device.type == "cpu"
        self._graph = _export(self.net, example, width_varies) if use_onnx else None
        self._session, self._session_pid = None, None
        _runners.add(self)

    @property
    def runtime(self) -> str:
        """What runs the network: "onnxruntime" or "torch"."""
        return "onnxruntime" if self._graph is not None else "torch"

    def __call__(self, images: np.ndarray) -> torch.Tensor:
        x = np.ascontiguousarray(images, dtype=np.float32)
        if self._graph is not None and len(x):
            return torch.from_numpy(self._session_here().run(None, {"images": x})[0])
        with torch.inference_mode():
            batch = torch.from_numpy(x).to(self.device).contiguous(memory_format=torch.channels_last)
            return self.net(batch).float().cpu()

    def _session_here(self) -> onnxruntime.InferenceSession:
        """This process's ONNX Runtime session, made on its first call. ONNX Runtime must not
        cross a fork: gunicorn forks its workers from a master that loaded the app, and a worker
        that inherits even an imported onnxruntime hangs when it exits. So the master only
        exports the graph, and each worker loads it into a session of its own."""
        if self._session_pid != os.getpid():
            self._session, self._session_pid = _session(self._graph), os.getpid()
        return self._session


def _export(net: nn.Module, example: tuple[int, ...], width_varies: bool) -> bytes:
    """`net` as an ONNX graph, with a batch (and width) of any size."""
    graph = io.BytesIO()
    axes = {0: "batch", 3: "width"} if width_varies else {0: "batch"}
    with warnings.catch_warnings():
        # The TorchScript-based exporter, which PyTorch now calls legacy, exports these plain CNNs
        # in milliseconds with nothing beyond `onnx`; the torch.export-based one takes seconds and
        # needs onnxscript. torch is pinned (pyproject.toml), so it cannot go away under us.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(example),), graph, input_names=["images"], output_names=["outputs"],
                          dynamic_axes={"images": axes}, dynamo=False)
    return graph.getvalue()


def _session(graph: bytes) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for `graph`, with as many threads as torch has (one per gunicorn
    worker), none of them spinning while it waits."""
    import onnxruntime  # here, not at the top: see Runner._session_here

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def open_sessions() -> None:
    """Make this process's ONNX Runtime sessions now rather than on each network's first call
    (the first costs ~0.4 s: it imports onnxruntime). gunicorn.conf.py calls it in every worker
    before the worker takes its first request."""
    for runner in list(_runners):
        if runner._graph is not None:
            runner._session_here()
