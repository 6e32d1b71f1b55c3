"""``python -m tunekit``: the same as the ``tunekit`` command."""

from tunekit.cli import main

main()
