"""segkit: epoch-based mmsegmentation training that works the first time.

Importing ``segkit`` registers the safe-checkpoint allowlist (:mod:`segkit.safe_load`),
so every tool that imports it can resume on torch >= 2.6 without turning
``weights_only`` off.
"""
import warnings

__version__ = '0.1.0'

# mmengine and mmcv import pkg_resources (kept by our setuptools<81 pin); its
# deprecation notice on every start says nothing the user can act on.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

try:
    from segkit.safe_load import register_safe_globals
except ImportError:  # torch or mmengine is broken: tools/doctor.py reports it
    pass
else:
    register_safe_globals()
