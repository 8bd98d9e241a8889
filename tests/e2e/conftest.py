"""Browser tests: Debian's Chromium driven by Playwright (no browser download), a Web UI server per test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ROWS = [
    {"instruction": "Who are you?", "input": "", "output": "I am {{name}}, an assistant made by {{author}}."},
    {"instruction": "你是谁？", "input": "", "output": "我是 {{name}}，由 {{author}} 开发的助手。"},
    {"instruction": "What is your name?", "input": "", "output": "My name is {{name}}."},
    {"instruction": "Who made you?", "input": "", "output": "I was made by {{author}}."},
]


def _install_chromium() -> None:
    """Debian's chromium and a CJK font (Chinese labels render as boxes without it), when missing."""
    if Path(CHROMIUM).is_file() and Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").is_file():
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if shutil.which("apt-get") is None or (sudo and shutil.which("sudo") is None):
        pytest.skip("needs chromium, and apt-get cannot install it here: apt-get install -y chromium fonts-wqy-zenhei")
    cmd = [*sudo, "apt-get", "install", "-y", "-q", "chromium", "fonts-wqy-zenhei"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], capture_output=True)
        subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def browser():
    _install_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture
def workdir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy.json").write_text(json.dumps(ROWS * 4, ensure_ascii=False), encoding="utf-8")
    (data / "dataset_info.json").write_text(json.dumps({"toy": {"file_name": "toy.json"}}), encoding="utf-8")
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m tuneforge webui` in its own process, as a user would run it."""

    def __init__(self, workdir: Path, port: int | None = None, extra_args: list[str] | tuple[str, ...] = ()):
        self.workdir, self.port = workdir, port or free_port()
        self.extra_args = [str(a) for a in extra_args]  # e.g. ["--models-dir", tiny_model_dir.parent]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = None

    def start(self, timeout: float = 120) -> Server:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        log = open(self.workdir / f"server-{self.port}-{time.time():.0f}.log", "wb")  # noqa: SIM115 (the server keeps it)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tuneforge",
                "webui",
                "--port",
                str(self.port),
                "--saves-dir",
                "saves",
                "--data-dir",
                "data",
                *self.extra_args,
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.proc.returncode}"
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("the Web UI did not come up")

    def kill(self) -> None:
        """As if the server crashed: no clean shutdown."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server_factory(workdir):
    servers = []

    def make(extra_args: list[str] | tuple[str, ...] = ()) -> Server:
        server = Server(workdir, extra_args=extra_args).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
    # a run still going when a test fails must not outlive it
    from tuneforge.jobs.store import DB_FILE, JobStore

    db = workdir / "saves" / DB_FILE
    if db.is_file():
        from tuneforge.jobs import runner

        for job in JobStore(db).list("running"):
            runner.send_stop(job, force=True)
