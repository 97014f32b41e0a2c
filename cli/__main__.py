"""``python -m cli``: the same as the ``proctor`` console script."""

from cli import main

main()
