"""mmseg 1.2.2 losses that break on real label maps, fixed.

Both bugs hit exactly the "my mIoU plateaued" variants: any pixel equal to the
ignore index (VOC's 255 object boundaries) crashes them.
"""
import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss, FocalLoss
from mmseg.registry import MODELS


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """mmseg's CrossEntropyLoss for ``class_weight``: mmseg computes its average
    factor as ``class_weight[label]`` over *all* pixels, so a 255 label raises
    ``IndexError: index 255 is out of bounds``. Here the factor is the sum of the
    class weights of the non-ignored pixels (torch's weighted-mean definition)."""

    def forward(self, cls_score, label, weight=None, avg_factor=None,
                reduction_override=None, ignore_index=-100, **kwargs):
        reduction = reduction_override or self.reduction
        if (self.class_weight is not None and not self.use_sigmoid and not self.use_mask
                and avg_factor is None and reduction == 'mean' and weight is None):
            w = cls_score.new_tensor(self.class_weight)
            valid = label != ignore_index
            avg_factor = w[label[valid]].sum().clamp(min=torch.finfo(w.dtype).eps)
        return super().forward(cls_score, label, weight=weight, avg_factor=avg_factor,
                               reduction_override=reduction_override,
                               ignore_index=ignore_index, **kwargs)


@MODELS.register_module()
class IgnoreSafeFocalLoss(FocalLoss):
    """mmseg's (sigmoid) FocalLoss. On CPU mmseg builds the one-hot target of a
    label map wrongly (``target[:, num_classes]``, a shape error); there we pass a
    one-hot target and mask ignored pixels through the per-pixel weight, which is
    what its CUDA path computes. On CUDA nothing changes."""

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None,
                ignore_index=255, **kwargs):
        if not pred.is_cuda and target.dim() == pred.dim() - 1:
            valid = target != ignore_index
            onehot = F.one_hot(torch.where(valid, target, torch.zeros_like(target)),
                               pred.size(1))
            onehot = onehot.movedim(-1, 1).to(pred.dtype)  # [B, C, H, W]
            mask = valid.reshape(-1).to(pred.dtype)
            weight = mask if weight is None else weight.reshape(-1).to(pred.dtype) * mask
            target = onehot
        return super().forward(pred, target, weight=weight, avg_factor=avg_factor,
                               reduction_override=reduction_override,
                               ignore_index=ignore_index, **kwargs)
