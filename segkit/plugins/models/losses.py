"""mmseg 1.2.2 losses that crash on any ignore-index pixel (VOC's 255 boundaries), fixed."""
import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss, FocalLoss
from mmseg.registry import MODELS


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """mmseg's CrossEntropyLoss, whose ``class_weight`` average factor indexes
    ``class_weight[label]`` over all pixels (IndexError on 255); here it sums the class
    weights of the non-ignored pixels (torch's weighted mean)."""

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
    """mmseg's (sigmoid) FocalLoss, whose CPU path builds a label map's one-hot target
    wrongly (a shape error); on CPU a one-hot target is passed and ignored pixels masked
    through the weight, as its CUDA path computes. On CUDA nothing changes."""

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
