"""`python -m tokenpulse` is the same as the `tokenpulse` console script."""

from tokenpulse.cli import main

main()
