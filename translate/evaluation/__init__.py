"""Evaluate a trained model on held-out pairs: PSNR/SSIM and, where their libraries and weights are
present, LPIPS per image and FID/KID over the set, against the task's classic baseline; written as JSON
plus an HTML page of side-by-sides. A learned metric that cannot run is skipped and the page says why.

`paired` scores (input, target) file pairs; `learned` adds LPIPS and FID/KID; `page` writes eval.json
and index.html."""
from translate.evaluation.paired import EvalReport, LearnedMetrics, evaluate

__all__ = ["EvalReport", "LearnedMetrics", "evaluate"]
