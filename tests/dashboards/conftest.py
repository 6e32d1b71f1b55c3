import shutil

import pytest


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium (``make test`` installs it where it may); the report tests need a real browser."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no chromium: install Debian's chromium package (apt-get install -y chromium; make test does "
                    "this when run as root)")
    return path
