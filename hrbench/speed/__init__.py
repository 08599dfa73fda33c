"""Speed switches for inference and data loading that keep the models' modules and results:
BatchNorm folding, channels-last and a traced graph (:mod:`.fuse`), CUDA-graph replay
(:mod:`.cuda_graph`), the accelerator-side top-down warp and heatmap targets (:mod:`.gpu_pipeline`)."""

from hrbench.speed.cuda_graph import CudaGraphForward
from hrbench.speed.fuse import conv_bn_pairs, count_batchnorms, fold_batchnorm, prepare_for_inference, to_channels_last

__all__ = ["CudaGraphForward", "conv_bn_pairs", "count_batchnorms", "fold_batchnorm", "prepare_for_inference",
           "to_channels_last"]
