"""Converters: iteration-based configs to epochs, pretrained weights to mmseg keys."""
