"""The identity model's life outside training: facesets extracted from
footage (:mod:`~swapline.model.extract`), export to a Triton model
repository (:mod:`~swapline.model.export`), its int8 variant for CPUs
(:mod:`~swapline.model.quantize`) and a real Triton serving the repository
(:mod:`~swapline.model.triton`)."""
