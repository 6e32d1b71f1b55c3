import logging
import os
import warnings

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _quiet_lightning():
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", ".*tensorboardX.*")
        yield


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url():
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
    except Exception as err:  # a machine without the server
        pytest.skip(f"no PostgreSQL server at 127.0.0.1:5432 (database test): {str(err).splitlines()[0]}")
    return POSTGRES
