"""pytest setup for Tools/tests: makes Tools/ importable (the `reference` package, convert_official)."""

import os
import sys

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
