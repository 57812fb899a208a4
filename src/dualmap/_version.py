"""The package version: one home, read by ``dualmap.__version__``, the archives' header (``_io``) and the build
(``[tool.setuptools.dynamic]`` in pyproject.toml)."""

__version__ = "0.1.0"
