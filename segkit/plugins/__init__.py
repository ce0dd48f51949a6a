"""Everything a config names by ``type=`` (docs/ARCHITECTURE.md lists them), registered on
import: configs need one ``custom_imports`` entry, ``'segkit.plugins'``. mmdet's models come
too (Mask2Former's head, pixel decoder and losses live in mmdet)."""
import mmdet.models  # noqa: F401

from segkit.plugins import (hooks, models, optim, per_class, runner, tensorboard,  # noqa: F401
                            transforms)
