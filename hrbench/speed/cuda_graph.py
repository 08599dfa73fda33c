"""Replay a whole forward as one CUDA graph: the launch overhead of hundreds of tiny kernels (the
reason lightweight HRNets are slow on GPUs despite their FLOPs) is paid once, at capture.

The graph is recorded for one input shape, dtype and memory format; each call copies the input into
the captured (static) input buffer, replays, and returns the static output buffer, which the next
call overwrites (``clone_output=True`` returns a copy instead). Dite-HRNet's dynamic kernels need no
special care: the per-sample kernel aggregation and the grouped convolution are ordinary kernels.
"""

from __future__ import annotations

import torch
from torch import nn

from hrbench.errors import HrbenchError


class CudaGraphForward:
    """``model`` (eval mode, on a CUDA device) captured for inputs like ``example``.

    Capture follows the documented recipe: a few warm-up forwards on a side stream (cuDNN/cuBLAS
    choose their algorithms and allocate workspaces outside the graph), then one forward under
    ``torch.cuda.graph`` without autograd. Optional ``autocast_dtype`` records the forward under
    autocast.
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, warmup: int = 3, clone_output: bool = False,
                 autocast_dtype: torch.dtype | None = None) -> None:
        if not torch.cuda.is_available() or example.device.type != "cuda":
            raise HrbenchError("CUDA graph capture needs a CUDA device and a CUDA input tensor")
        if model.training:
            raise HrbenchError("CUDA graph capture needs an eval-mode model; call model.eval() first")
        self.model = model
        self.clone_output = clone_output
        self.autocast_dtype = autocast_dtype
        self.static_input = example.detach().clone(memory_format=torch.preserve_format)
        side = torch.cuda.Stream(device=example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(max(1, warmup)):
                self._forward(self.static_input)
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.static_output = self._forward(self.static_input)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self.autocast_dtype or torch.bfloat16
        with torch.autocast("cuda", dtype=dtype, enabled=self.autocast_dtype is not None):
            return self.model(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape != self.static_input.shape or x.dtype != self.static_input.dtype:
            raise HrbenchError(f"this CUDA graph was captured for input {tuple(self.static_input.shape)} "
                               f"{self.static_input.dtype}, got {tuple(x.shape)} {x.dtype}")
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output.clone() if self.clone_output else self.static_output
