"""utils/allocator.py: which malloc a training process re-executes itself on."""

import subprocess
import sys

import pytest

from tuneforge.errors import UserError
from tuneforge.utils import allocator
from tuneforge.utils.allocator import allocator_to_preload


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine whose library folders and NVIDIA driver folder are ours to fill."""
    libs, gpus = tmp_path / "lib", tmp_path / "gpus"
    libs.mkdir()
    monkeypatch.setattr(allocator, "SEARCH_DIRS", (str(tmp_path / "absent"), str(libs)))
    monkeypatch.setattr(allocator, "NVIDIA_GPUS", str(gpus))
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    return libs, gpus


def test_auto_finds_jemalloc_in_the_system_folders(machine):
    libs, _ = machine
    assert allocator_to_preload({}) is None  # not installed: the system's malloc
    (libs / "libjemalloc.so.2").write_bytes(b"")
    assert allocator_to_preload({}) == str(libs / "libjemalloc.so.2")
    assert allocator_to_preload({"TUNEFORGE_MALLOC": "auto"}) == str(libs / "libjemalloc.so.2")


def test_a_gpu_machine_an_opt_out_and_other_systems_keep_their_malloc(machine, monkeypatch):
    libs, gpus = machine
    (libs / "libjemalloc.so.2").write_bytes(b"")
    assert allocator_to_preload({"TUNEFORGE_MALLOC": "system"}) is None
    (gpus / "0000:01:00.0").mkdir(parents=True)  # the NVIDIA driver lists a GPU: activations live on it
    assert allocator_to_preload({}) is None
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator_to_preload({"TUNEFORGE_MALLOC": str(libs / "libjemalloc.so.2")}) is None


def test_a_named_library_and_the_environments_own_lib_folder(machine, tmp_path):
    tcmalloc = tmp_path / "libtcmalloc.so.4"
    tcmalloc.write_bytes(b"")
    assert allocator_to_preload({"TUNEFORGE_MALLOC": str(tcmalloc)}) == str(tcmalloc)
    with pytest.raises(UserError, match=r"TUNEFORGE_MALLOC: .*missing.so is not a file — set it to"):
        allocator_to_preload({"TUNEFORGE_MALLOC": str(tmp_path / "missing.so")})
    conda = tmp_path / "conda"
    (conda / "lib").mkdir(parents=True)
    (conda / "lib" / "libjemalloc.so.2").write_bytes(b"")
    assert allocator_to_preload({"CONDA_PREFIX": str(conda)}) == str(conda / "lib" / "libjemalloc.so.2")


def test_no_reexec_when_already_preloaded(machine, monkeypatch):
    libs, _ = machine
    (libs / "libjemalloc.so.2").write_bytes(b"")
    monkeypatch.setenv("LD_PRELOAD", str(libs / "libjemalloc.so.2"))
    monkeypatch.setattr(allocator.os, "execve", lambda *a: pytest.fail("re-executed a preloaded process"))
    allocator.reexec_with_allocator()  # returns: nothing to change
    monkeypatch.setenv("TUNEFORGE_MALLOC", "system")
    monkeypatch.delenv("LD_PRELOAD")
    allocator.reexec_with_allocator()


def test_reexec_runs_the_same_command_line_with_the_library_first(machine, monkeypatch):
    libs, _ = machine
    (libs / "libjemalloc.so.2").write_bytes(b"")
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    monkeypatch.delenv("TUNEFORGE_MALLOC", raising=False)
    monkeypatch.delenv("MALLOC_CONF", raising=False)
    calls = []
    monkeypatch.setattr(allocator.os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(allocator.sys, "orig_argv", ["python", "-m", "tuneforge", "train", "cfg.yaml"])
    allocator.reexec_with_allocator()
    ((executable, argv, env),) = calls
    assert executable == allocator.sys.executable and argv == ["python", "-m", "tuneforge", "train", "cfg.yaml"]
    assert env["LD_PRELOAD"] == f"{libs / 'libjemalloc.so.2'}:/opt/other.so"
    assert env["MALLOC_CONF"] == allocator.JEMALLOC_CONF  # large tensors in the ordinary arenas, pages kept

    calls.clear()
    monkeypatch.setenv("MALLOC_CONF", "narenas:2")  # the user's own settings win
    allocator.reexec_with_allocator()
    assert calls[0][2]["MALLOC_CONF"] == "narenas:2"

    calls.clear()
    monkeypatch.delenv("MALLOC_CONF")
    monkeypatch.delenv("LD_PRELOAD")
    tcmalloc = libs / "libtcmalloc.so.4"
    tcmalloc.write_bytes(b"")
    monkeypatch.setenv("TUNEFORGE_MALLOC", str(tcmalloc))
    allocator.reexec_with_allocator()
    assert calls[0][2]["LD_PRELOAD"] == str(tcmalloc) and "MALLOC_CONF" not in calls[0][2]  # jemalloc's own


def test_a_missing_named_library_is_one_line_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TUNEFORGE_MALLOC": str(tmp_path / "missing.so")}
    proc = subprocess.run(
        [sys.executable, "-m", "tuneforge", "train", str(tmp_path / "cfg.yaml")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.strip().splitlines() == [
        f"tuneforge: error: TUNEFORGE_MALLOC: {tmp_path / 'missing.so'} is not a file — set it to a malloc library's "
        "path, to auto or to system"
    ]


def test_the_environment_of_another_process(machine):
    """allocator_environment(environ): what a process started with `environ` needs (benchmarks/primitive_cache.py
    starts its children so), without reading or changing this process's environment."""
    libs, _ = machine
    (libs / "libjemalloc.so.2").write_bytes(b"")
    jemalloc = str(libs / "libjemalloc.so.2")
    env = allocator.allocator_environment({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "LD_PRELOAD": jemalloc, "MALLOC_CONF": allocator.JEMALLOC_CONF}
    assert allocator.allocator_environment(env) is None  # already on it
    assert allocator.allocator_environment({"TUNEFORGE_MALLOC": "system"}) is None
    mine = {"MALLOC_CONF": "narenas:1"}
    assert allocator.allocator_environment(mine)["MALLOC_CONF"] == "narenas:1"
    assert mine == {"MALLOC_CONF": "narenas:1"}


def test_this_machines_jemalloc_takes_every_setting():
    """The preloaded library reads JEMALLOC_CONF whole (an option it does not know would print a warning at every
    start and be ignored): each option reads back as set, and nothing reaches stderr. Without jemalloc here, the
    environment stays glibc's."""
    env = allocator.allocator_environment({"PATH": "/usr/bin:/bin"})
    if allocator_to_preload({}) is None:
        assert env is None
        return
    settings = dict(pair.split(":") for pair in allocator.JEMALLOC_CONF.split(","))
    script = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None)\n"
        f"for name in {list(settings)!r}:\n"
        "    value, size = ctypes.c_ssize_t(), ctypes.c_size_t(8)\n"
        "    assert libc.mallctl(('opt.' + name).encode(), ctypes.byref(value), ctypes.byref(size), None, 0) == 0\n"
        "    print(name, value.value)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    read = dict(line.split() for line in proc.stdout.splitlines())
    assert read == settings
