"""autoevol: Auto Evol-Instruct as a library and a command-line tool."""

__version__ = "0.1.0"
__all__ = ["__version__"]
