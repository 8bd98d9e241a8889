"""SwanLab reporting (use_swanlab, or report_to: swanlab) through swanlab's own transformers callback, as
LLaMA-Factory does: the project, workspace, run name, mode and log folder go to swanlab.init, the API key logs in
for cloud mode, and a Lark webhook (signed with the secret) hears when the run ends. The SwanLab run ends with the
process (swanlab's exit hook), after the final evaluation; a later run in the same process starts a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuneforge.config.tracking_checks import report_names, uses_swanlab
from tuneforge.errors import UserError

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig
    from tuneforge.config.tracking_args import TrackingArguments

TAGS = ["TuneForge"]


def without_swanlab(report_to):
    """report_to for transformers: our callback reports to SwanLab, so transformers must not add its own too."""
    names = [n for n in report_names(report_to) if n != "swanlab"]
    if report_names(report_to) == names:
        return report_to
    return names[0] if len(names) == 1 else names or "none"


def swanlab_callbacks(cfg: RunConfig) -> list:
    return [swanlab_callback(cfg.tracking)] if uses_swanlab(cfg) else []


def swanlab_callback(tr: TrackingArguments):
    # swanlab late: it is an optional package and imports its SDK (a second or so)
    import swanlab
    from swanlab.integration.transformers import SwanLabCallback

    if tr.swanlab_api_key and tr.swanlab_mode == "cloud":  # the other modes never talk to the cloud
        _login(swanlab, tr.swanlab_api_key)
    notify = []
    if tr.swanlab_lark_webhook_url:
        from swanlab.plugin.notification import LarkCallback

        class Lark(LarkCallback):
            def _get_url(self):  # swanlab 0.10.3 raises building the link of an offline run (not uploaded yet)
                try:
                    return super()._get_url()
                except ValueError:
                    return None

        notify.append(Lark(webhook_url=tr.swanlab_lark_webhook_url, secret=tr.swanlab_lark_secret))

    class TuneForgeSwanLab(SwanLabCallback):
        def setup(self, args, state, model=None):
            if not self._trainer_initialized and self._is_world_process_zero(state):
                # reinit: a run left open by an earlier training in this process ends instead of being reused
                swanlab.init(reinit=True, callbacks=[self, *notify], **self._init_kwargs)
            super().setup(args, state, model)

    return TuneForgeSwanLab(
        project=tr.swanlab_project,
        workspace=tr.swanlab_workspace,
        experiment_name=tr.swanlab_run_name,
        mode=tr.swanlab_mode,
        log_dir=tr.swanlab_logdir,
        tags=TAGS,
    )


def _login(swanlab, api_key: str) -> None:
    from swanlab.exceptions import AuthenticationError

    try:
        swanlab.login(api_key=api_key)
    except (AuthenticationError, OSError) as exc:  # OSError: requests' connection and HTTP errors
        raise UserError(
            f"SwanLab login failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            where="swanlab_api_key",
            fix="check the key and the network, or use swanlab_mode: offline and upload later with `swanlab sync`",
        ) from exc
