"""Entry point of `python -m services.simulator`."""

from services.simulator.cli import main

main()
