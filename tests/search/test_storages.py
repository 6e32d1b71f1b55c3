"""Storages for many workers: Optuna's gRPC proxy (`tunekit storage serve`) and its journal storage on Redis or a
file, each running the bundled example with two worker processes to completion."""

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "search.yaml"
REDIS = "redis://127.0.0.1:6379/0"


def _tunekit(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "tunekit.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _example_with_two_workers(storage, tmp_path, name):
    result = _tunekit("search", EXAMPLE, "--n-trials", 2, "--n-jobs", 2, "--storage", storage, "--study-name", name,
                      "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert data["complete"] + data["pruned"] == 2 and data["failed"] == 0
    return data


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis",
                                reason="the redis client is not installed (pip install tunekit-lightning[scale])")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as err:
        pytest.skip(f"no Redis server at 127.0.0.1:6379: {err}")
    return REDIS


def test_the_redis_journal_runs_the_example_and_plain_optuna_opens_the_same_study(tmp_path, redis_url):
    name = f"redis-{uuid.uuid4().hex[:8]}"
    _example_with_two_workers(redis_url, tmp_path, name)
    from optuna.storages.journal import JournalRedisBackend

    study = optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(JournalRedisBackend(redis_url)))
    assert sorted(t.number for t in study.trials) == [0, 1]  # every trial asked for, once
    assert all(t.state.is_finished() for t in study.trials)


def test_a_journal_file_runs_the_example_and_tunekit_best_reads_it(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    _example_with_two_workers(url, tmp_path, "journal")
    best = _tunekit("best", "--storage", url, "--study-name", "journal", cwd=tmp_path)
    assert best.returncode == 0 and "recipe:" in best.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def grpc_proxy(tmp_path, postgres_url):
    pytest.importorskip("grpc", reason="grpcio is not installed (pip install tunekit-lightning[scale])")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "tunekit.cli", "storage", "serve", "--storage", postgres_url,
                               "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"grpc://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port).get_all_studies()
            break
        except Exception:
            if server.poll() is not None:
                pytest.fail(f"tunekit storage serve exited: {server.stdout.read()}")
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_the_grpc_proxy_over_postgresql_runs_the_example(tmp_path, grpc_proxy):
    name = f"grpc-{uuid.uuid4().hex[:8]}"
    _example_with_two_workers(grpc_proxy, tmp_path, name)
    port = int(grpc_proxy.rsplit(":", 1)[1])
    study = optuna.load_study(study_name=name, storage=optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port))
    assert sorted(t.number for t in study.trials) == [0, 1] and all(t.state.is_finished() for t in study.trials)


@pytest.mark.parametrize(("url", "message"), [
    ("grpc://127.0.0.1:1", "no gRPC proxy server answers there"),
    ("grpc://nohost", "a gRPC proxy URL is grpc://HOST:PORT"),
    ("redis://127.0.0.1:1", "cannot open storage redis://127.0.0.1:1"),
    ("journal:///no/such/folder/x.log", "the folder '/no/such/folder' does not exist"),
])
def test_an_unreachable_storage_is_one_line_exit_2(tmp_path, url, message):
    result = _tunekit("search", EXAMPLE, "--n-trials", 1, "--storage", url, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    assert not list(tmp_path.iterdir())


def test_serve_refuses_a_storage_that_is_not_a_database(tmp_path):
    result = _tunekit("storage", "serve", "--storage", "redis://127.0.0.1:6379", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "proxies a database" in result.stderr

