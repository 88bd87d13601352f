"""`python -m nnctl` and the `nnctl` console script (`nnctl.__main__:run`).

Signals are handled before anything else is imported (nnctl.startup)."""

from nnctl import startup

startup.at_start()

from nnctl.cli import main  # noqa: E402  (after the signal handlers, on purpose)


def run() -> None:
    main()


if __name__ == "__main__":
    main()
