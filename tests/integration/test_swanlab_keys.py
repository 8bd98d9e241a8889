"""SwanLab reporting (use_swanlab / report_to: swanlab and the swanlab_* keys), run offline: swanlab's offline mode
writes its run file into swanlab_logdir, read back here with swanlab's own reader; the Lark webhook is a local HTTP
server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tuneforge.cli import main
from tuneforge.config import load_config
from tuneforge.errors import UserError
from tuneforge.train.arguments import build_training_arguments
from tuneforge.utils import run_folder

swanlab = pytest.importorskip("swanlab")  # the test environment installs it (requirements/lock.txt)


def overrides(cfg: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in cfg.items()]


def swanlab_records(logdir):
    """(start record, {metric: {step: value}}) of the one SwanLab run file under logdir."""
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader

    (path,) = logdir.glob("run-*/run-*.swanlab")
    reader = DataStoreReader()
    reader.open(path)
    start, scalars = None, {}
    for raw in reader:
        record = Record()
        record.ParseFromString(raw)
        if record.HasField("start"):
            start = record.start
        elif record.HasField("scalar"):
            scalars.setdefault(record.scalar.key, {})[record.scalar.step] = record.scalar.value.number
    reader.close()
    return start, scalars


class Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"code": 0}')

    def log_message(self, *args):
        pass


def test_swanlab_offline_run_logs_the_loss_and_notifies_lark(train_overrides, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Webhook.received.clear()
    logdir = tmp_path / "swanlog"
    cfg = train_overrides(
        "lora",
        max_steps=3,
        use_swanlab=True,
        swanlab_mode="offline",
        swanlab_logdir=str(logdir),
        swanlab_project="tf-proj",
        swanlab_workspace="tf-team",
        swanlab_run_name="tiny-lora",
        swanlab_lark_webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
        swanlab_lark_secret="lark-secret",
    )
    try:
        assert main(["train", *overrides(cfg)]) == 0
        swanlab.finish()  # the run otherwise ends at exit; the run file and the webhook need it now
        start, scalars = swanlab_records(logdir)
        for _ in range(100):  # the notification goes out on swanlab's background thread
            if Webhook.received:
                break
            threading.Event().wait(0.05)
    finally:
        server.shutdown()
    assert (start.project, start.workspace, start.name) == ("tf-proj", "tf-team", "tiny-lora")
    ours = {r["step"]: r["loss"] for r in run_folder.read_records(tmp_path / "out-lora") if r.get("loss") is not None}
    assert set(ours) == {1, 2, 3}
    assert scalars["train/loss"] == pytest.approx(ours, rel=1e-4)  # the JSONL rounds nothing; swanlab neither
    (message,) = Webhook.received
    assert "sign" in message and "timestamp" in message  # signed with swanlab_lark_secret
    saved = (tmp_path / "out-lora" / "config.yaml").read_text()
    assert "lark-secret" not in saved and "127.0.0.1" not in saved  # secrets masked in the run folder


def test_report_to_swanlab_is_our_callback_not_transformers(tiny_model_dir, tmp_path):
    base = [f"model_name_or_path={tiny_model_dir}", "report_to=swanlab", "swanlab_mode=disabled"]
    cfg = load_config(None, base)
    args = build_training_arguments(cfg, str(tmp_path))
    assert "swanlab" not in args.report_to  # transformers would add a second, unconfigured SwanLab callback
    from tuneforge.train.swanlab_report import swanlab_callbacks

    (callback,) = swanlab_callbacks(cfg)
    assert callback._init_kwargs["mode"] == "disabled"


def test_swanlab_api_key_logs_in_for_cloud_mode_only(monkeypatch):
    from tuneforge.config.tracking_args import TrackingArguments
    from tuneforge.train.swanlab_report import swanlab_callback

    logins = []
    monkeypatch.setattr(swanlab, "login", lambda **kw: logins.append(kw))
    swanlab_callback(TrackingArguments(use_swanlab=True, swanlab_api_key="sk-1", swanlab_mode="offline"))
    assert logins == []
    swanlab_callback(TrackingArguments(use_swanlab=True, swanlab_api_key="sk-1", swanlab_mode="cloud"))
    assert logins == [{"api_key": "sk-1"}]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["swanlab_project=p"], "'swanlab_project' has no effect without use_swanlab: true"),
        (["use_swanlab=true", "swanlab_lark_secret=s"], "swanlab_lark_secret signs the Lark webhook"),
        (["use_swanlab=true", "swanlab_mode=local"], "needs the swanboard package"),
        (["use_swanlab=true", "stage=ppo", "reward_model=rm"], "use_swanlab is not available with stage ppo"),
    ],
)
def test_swanlab_keys_refused_in_one_line(tiny_model_dir, keys, message):
    with pytest.raises(UserError, match=message):
        load_config(None, [f"model_name_or_path={tiny_model_dir}", *keys])


def test_swanlab_missing_package_is_one_line(tiny_model_dir, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "swanlab" else find_spec(name, *a)
    )
    with pytest.raises(UserError, match="needs the swanlab package"):
        load_config(None, [f"model_name_or_path={tiny_model_dir}", "use_swanlab=true"])
    with pytest.raises(UserError, match="swanlab needs the swanlab package"):
        load_config(None, [f"model_name_or_path={tiny_model_dir}", "report_to=swanlab"])


def test_swanlab_failed_login_is_one_line(monkeypatch):
    from swanlab.exceptions import AuthenticationError

    from tuneforge.config.tracking_args import TrackingArguments
    from tuneforge.train.swanlab_report import swanlab_callback

    def refuse(**kw):
        raise AuthenticationError("Invalid API key")

    monkeypatch.setattr(swanlab, "login", refuse)
    with pytest.raises(UserError, match="SwanLab login failed: Invalid API key"):
        swanlab_callback(TrackingArguments(use_swanlab=True, swanlab_api_key="bad", swanlab_mode="cloud"))
