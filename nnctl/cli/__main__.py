"""`python -m nnctl.cli`: the same as the `nnctl` command."""

from nnctl import startup
from nnctl.cli import main

startup.at_start()
main()
