"""tokenpulse: self-hosted real-time crypto market data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokenpulse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
