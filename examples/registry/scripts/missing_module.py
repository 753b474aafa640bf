import json  # noqa: F401  (the standard library is fine)
import metaclaude_example_missing_module  # noqa: F401  (this one is not installed)
