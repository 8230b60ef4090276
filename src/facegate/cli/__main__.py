"""`python -m facegate.cli`: the same as the `facegate` command."""

from facegate.cli import main

main()
