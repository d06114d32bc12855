"""The version of tipsessions, written here and nowhere else.

``setup.py`` reads this file without importing the package (whose
dependencies may not be installed yet when it runs), and the package
re-exports it as ``tipsessions.__version__``.
"""

__version__ = "0.1.0"
