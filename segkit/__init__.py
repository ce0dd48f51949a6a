"""segkit: epoch-based mmsegmentation training that works the first time.

Importing ``segkit`` registers the safe-checkpoint allowlist (see
:mod:`segkit.safe_load`), so every tool that imports it before loading anything
can resume on torch >= 2.6 without turning ``weights_only`` off.
"""
import warnings

__version__ = '0.1.0'

# mmengine and mmcv import pkg_resources (kept by our setuptools<81 pin); its
# deprecation notice on every start says nothing the user can act on.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')


def _register_safe_loading() -> None:
    try:
        from segkit.safe_load import register_safe_globals
    except ImportError:
        # torch or mmengine is missing or broken: `tools/doctor.py` reports it,
        # and every tool that needs them fails at its own import.
        return
    register_safe_globals()


_register_safe_loading()
