"""hydrascope — find coordinated proxy-account networks used to distill AI models."""

__version__ = "0.1.0"
__all__ = ["__version__"]
