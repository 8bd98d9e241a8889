"""Which warm worker a `tuneforge train` may hand its run to (warm/address.py), and when it runs cold instead."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from tuneforge.warm import address, client, control

BASE = {"HOME": "/home/u", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin", "XDG_RUNTIME_DIR": "/run/user/1000"}


@pytest.mark.parametrize(
    "change",
    [
        {"HF_HOME": "/data/hf"},  # transformers' cache folder, fixed at import
        {"HF_HUB_OFFLINE": "1"},
        {"OMP_NUM_THREADS": "4"},  # the OpenMP pool's size, read when libgomp loads
        {"TRANSFORMERS_VERBOSITY": "info"},
        {"PYTHONPATH": "/src"},
        {"LD_PRELOAD": "/usr/lib/libtcmalloc.so"},
        {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"},
        {"TUNEFORGE_MALLOC": "system"},  # the worker's allocator
    ],
)
def test_an_import_time_variable_names_another_worker(change):
    assert address.fingerprint({**BASE, **change}) != address.fingerprint(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"WANDB_PROJECT": "mine"},  # a run's own settings reach the child as the caller has them
        {"PATH": "/opt/bin:/usr/bin"},
        {"BENCH_T_LAUNCH": "123.4"},
        {"TUNEFORGE_WARM": "1"},  # the switch itself
        {"PWD": "/elsewhere"},
        {"TUNEFORGE_CPU_BF16": "0", "TUNEFORGE_SWEEP_TRIAL": "3"},  # read per run
    ],
)
def test_other_variables_reach_the_same_worker(change):
    assert address.fingerprint({**BASE, **change}) == address.fingerprint(BASE)


@pytest.fixture
def short_tmp():
    """A folder with a short path (pytest's tmp_path can be longer than a Unix socket address allows)."""
    folder = tempfile.mkdtemp(prefix="tfw", dir="/tmp")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_a_base_folder_too_long_for_a_socket_is_passed_over(tmp_path):
    deep = tmp_path / ("x" * 100)
    deep.mkdir()
    folder = address.socket_dir({"XDG_RUNTIME_DIR": str(deep)})
    assert folder.parent != deep and len(os.fsencode(address.socket_path({"XDG_RUNTIME_DIR": str(deep)}))) < 108


def test_the_socket_lives_in_a_private_folder_of_this_user(short_tmp):
    env = {"XDG_RUNTIME_DIR": str(short_tmp)}
    assert address.private_dir(env) is None  # not made by a lookup
    folder = address.private_dir(env, create=True)
    assert folder == short_tmp / f"tuneforge-warm-{os.getuid()}" and folder.stat().st_mode & 0o777 == 0o700
    assert address.socket_path(env).parent == folder and address.socket_path(env).suffix == ".sock"
    folder.chmod(0o755)  # open to others: a socket there could be anyone's
    assert address.private_dir(env) is None


@pytest.mark.parametrize("value", ["0", "false", "no", "OFF"])
def test_tuneforge_warm_0_never_uses_a_worker(value, monkeypatch, short_tmp):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.setenv("TUNEFORGE_WARM", value)
    address.private_dir(create=True)
    assert address.disabled()
    assert client.run_in_worker(["train", "cfg.yaml"]) is None


def test_without_a_listening_worker_the_caller_runs_cold(monkeypatch, short_tmp):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.delenv("TUNEFORGE_WARM", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert client.run_in_worker(["train", "cfg.yaml"]) is None  # no folder: nothing to look at
    address.private_dir(create=True)
    assert client.run_in_worker(["train", "cfg.yaml"]) is None  # no socket
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a worker killed -9 leaves its socket file
    dead.bind(str(address.socket_path()))
    dead.close()
    assert address.socket_path().exists()
    assert client.run_in_worker(["train", "cfg.yaml"]) is None


def test_a_torchrun_rank_runs_in_its_own_process(monkeypatch, short_tmp):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.setenv("LOCAL_RANK", "0")
    address.private_dir(create=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(address.socket_path()))
    listener.listen(1)
    try:
        assert client.run_in_worker(["train", "cfg.yaml"]) is None
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # it never connected
    finally:
        listener.close()


def test_status_names_the_workers_of_other_environments(monkeypatch, short_tmp):
    """A worker started in another environment (or before an edit) is not this one's: status says so, and how to
    stop it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    folder = address.private_dir(create=True)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(folder / "0000000000000000.sock"))
    other.listen(1)

    def answer_once():
        conn, _ = other.accept()
        (size,) = client.HEADER.unpack(conn.recv(client.HEADER.size))
        while size > 0:  # the whole request, as a worker reads it
            size -= len(conn.recv(size))
        conn.sendall(b'{"pid": 4242, "started": 0, "idle_s": 60, "runs": 0}\n')
        conn.close()

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        line = control.status()
    finally:
        thread.join(timeout=10)
        other.close()
    assert line.startswith("no warm worker runs for this environment")
    assert "1 other warm worker of yours" in line and "tuneforge warm stop" in line
    assert control.status().endswith(f"(it would listen on {address.socket_path()})")  # none listens now
