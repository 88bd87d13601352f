"""`python -m nnctl.cli`: the same as the `nnctl` command."""

from nnctl.cli import main

main()
