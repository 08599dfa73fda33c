"""Evaluation: decoding through the model's codec, flip test, OKS / OKS-NMS, COCOeval, MPII PCKh, and model inference.

Typical use: ``preds = predict(model, dataset, flip_test=True)`` then
``evaluate(dataset, preds, out_dir, flip=True)``; on image and video files:
``predict_files(model, paths, input_hw, flip_pairs)`` (what ``hrbench predict`` writes).
"""

from hrbench.evaluation.api import evaluate
from hrbench.evaluation.coco_eval import METRIC_NAMES, coco_results, evaluate_coco, rescore, run_cocoeval
from hrbench.evaluation.decode import decode_heatmaps, decode_keypoints, to_image, transform_preds
from hrbench.evaluation.files import predict_files, predict_image_file, predict_video
from hrbench.evaluation.flip import flip_back, flip_test, merge_flip, shift_right
from hrbench.evaluation.inference import predict, predict_batch
from hrbench.evaluation.nms import oks_iou, oks_nms
from hrbench.evaluation.pckh import evaluate_mpii, pckh
from hrbench.evaluation.predictions import merge_predictions, unique_sorted

__all__ = ["evaluate", "METRIC_NAMES", "coco_results", "evaluate_coco", "rescore", "run_cocoeval",
           "decode_heatmaps", "decode_keypoints", "to_image", "transform_preds",
           "flip_back", "flip_test", "merge_flip", "shift_right", "predict",
           "predict_batch", "oks_iou", "oks_nms", "evaluate_mpii", "pckh",
           "merge_predictions", "unique_sorted", "predict_files", "predict_image_file", "predict_video"]
