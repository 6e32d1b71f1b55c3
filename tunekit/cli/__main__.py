"""``python -m tunekit.cli``: the same as the ``tunekit`` command."""

from tunekit.cli import main

main()
