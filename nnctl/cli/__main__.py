"""`python -m nnctl.cli`: the same as the `nnctl` command."""

from nnctl import interrupt
from nnctl.cli import main

interrupt.at_start()
main()
