"""`python3 -m etok.tools ...`: the same as the `etok-tools` command."""
import sys

from .cli import main

sys.exit(main())
