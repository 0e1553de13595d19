"""Measuring swapline: a model's identity and expression on held-out faces
(:mod:`~swapline.evaluation.identity`), a swapped clip against its input
(:mod:`~swapline.evaluation.clip`, with the measures in
:mod:`~swapline.evaluation.quality`), and replicas and GPUs for N streams
from benchmark results (:mod:`~swapline.evaluation.capacity`)."""
