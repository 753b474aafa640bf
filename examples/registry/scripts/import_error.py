# The module exists, the name does not: ImportError (not ModuleNotFoundError).
from json import load_everything_fast  # noqa: F401
