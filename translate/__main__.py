"""`python -m translate` (and `torchrun -m translate`) runs the command line."""
import sys

from translate.cli import main

sys.exit(main())
