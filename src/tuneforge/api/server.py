"""Run the API with uvicorn: in the foreground (`tuneforge api`) or in a background thread (tests, the Web UI)."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace

from tuneforge.api.app import ServerSettings, create_app, model_name_for
from tuneforge.chat.engines import get_engine
from tuneforge.errors import UserError

API_KEY_ENV = "TUNEFORGE_API_KEY"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """A UserError when nothing can listen on host:port (taken, or not an address of this machine)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                where="--host/--port",
                fix="pick another --port, or stop what is using it",
            ) from exc


def serve(
    cfg,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    model_name: str | None = None,
) -> None:
    """Load the engine the config names and serve it until Ctrl-C. The key falls back to $TUNEFORGE_API_KEY;
    the model id to the model's (or last adapter's) folder name."""
    import uvicorn  # uvicorn: only `tuneforge api` serves

    check_port(host, port)  # before the model loads: a busy port fails in a second, not after a minute
    settings = settings or ServerSettings()
    settings = replace(
        settings,
        api_key=settings.api_key or os.environ.get(API_KEY_ENV) or None,
        model_name=model_name or model_name_for(cfg),
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        print(f"warning: serving on {host} without an API key: anyone who can reach it can use the model")
    app = create_app(get_engine(cfg), settings)
    print(f"Serving {settings.model_name} at http://{host}:{port}/v1 (OpenAI-compatible)")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)


class BackgroundServer:
    """`with BackgroundServer(app) as url:` serves the app on 127.0.0.1 and a free port in a thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None):
        import uvicorn

        self.host, self.port = host, port or free_port(host)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
