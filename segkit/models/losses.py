"""Losses the config variants need that mmseg/mmdet lack."""
from mmdet.models.losses import CrossEntropyLoss as MMDetCrossEntropyLoss
from mmseg.models.losses.utils import get_class_weight
from mmseg.registry import MODELS


@MODELS.register_module()
class FileWeightedCrossEntropyLoss(MMDetCrossEntropyLoss):
    """mmdet's CrossEntropyLoss (Mask2Former's classification loss) whose
    ``class_weight`` may be a file written by ``tools/class_weights.py``
    (.json / .npy / .pkl), as mmseg's own CrossEntropyLoss already allows.
    """

    def __init__(self, class_weight=None, **kwargs):
        weight = get_class_weight(class_weight)
        if weight is not None:
            weight = [float(w) for w in weight]
        super().__init__(class_weight=weight, **kwargs)
