"""The torch profiler and per-module timing as Trainer callbacks (LLaMA-Factory's TorchProfilerCallback and
ModuleProfilerCallback).

- enable_torch_profiler: torch.profiler.profile over the training steps with the profiler_* schedule (wait, warm up,
  record `active` steps, `repeat` cycles); each recorded cycle is one Chrome trace JSON (open it in Perfetto,
  chrome://tracing or TensorBoard) in <profiler_output_dir or output_dir/profiler>/rank_<N>/.
- profile_modules: forward and backward time of the modules whose names match the patterns, logged at each logging
  step. CUDA events on a GPU (as LF); on a CPU the ops run synchronously, so the wall clock between a module's hooks
  is its time (LF times nothing there).
"""

from __future__ import annotations

import fnmatch
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

# transformers at the top: the callbacks subclass TrainerCallback; only the stage recipes import this module
import torch
from transformers import TrainerCallback

from tuneforge.config.tracking_checks import module_patterns
from tuneforge.utils.logging import get_logger

if TYPE_CHECKING:
    from tuneforge.config.run_config import RunConfig
    from tuneforge.config.tracking_args import TrackingArguments

logger = get_logger(__name__)


def profiler_callbacks(cfg: RunConfig, output_dir: str | Path) -> list:
    tr = cfg.tracking
    callbacks: list = []
    if tr.enable_torch_profiler:
        callbacks.append(TorchProfilerCallback(tr, Path(tr.profiler_output_dir or Path(output_dir) / "profiler")))
    if tr.profile_modules:
        callbacks.append(ModuleTimerCallback(module_patterns(tr.profile_modules)))
    return callbacks


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class TorchProfilerCallback(TrainerCallback):
    def __init__(self, tr: TrackingArguments, folder: Path):
        self.tr = tr
        self.folder = folder
        self.profiler = None

    def on_train_begin(self, args, state, control, **kwargs):
        tr = self.tr
        trace_dir = self.folder / f"rank_{_rank()}"
        trace_dir.mkdir(parents=True, exist_ok=True)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(
            activities=activities,
            schedule=torch.profiler.schedule(
                wait=tr.profiler_wait_steps,
                warmup=tr.profiler_warmup_steps,
                active=tr.profiler_active_steps,
                repeat=tr.profiler_repeat,
            ),
            on_trace_ready=torch.profiler.tensorboard_trace_handler(str(trace_dir)),
            record_shapes=tr.profiler_record_shapes,
            profile_memory=tr.profiler_profile_memory,
            with_stack=tr.profiler_with_stack,
        )
        self.profiler.start()
        logger.info(
            "torch profiler: wait %d, warm-up %d, record %d step(s), %s; traces in %s",
            tr.profiler_wait_steps,
            tr.profiler_warmup_steps,
            tr.profiler_active_steps,
            f"{tr.profiler_repeat} cycle(s)" if tr.profiler_repeat else "until the end",
            trace_dir,
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is not None:
            self.profiler.step()

    def on_train_end(self, args, state, control, **kwargs):
        if self.profiler is not None:
            self.profiler.stop()  # a cycle still recording is written too
            self.profiler = None


class _Clock:
    """Start/stop marks and their elapsed milliseconds: CUDA events on a GPU, perf_counter on a CPU."""

    def __init__(self):
        self.cuda = torch.cuda.is_available()

    def mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(self, start, end) -> float:
        return start.elapsed_time(end) if self.cuda else (end - start) * 1000.0

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


class ModuleTimerCallback(TrainerCallback):
    """Hooks on the matching modules; each call's forward / backward time, summed into means at each log."""

    def __init__(self, patterns: list[str]):
        self.patterns = patterns
        self.clock = _Clock()
        self.handles: list = []
        self.pending: list[tuple[str, str, object, object]] = []  # (module, "fwd"/"bwd", start, end)
        self.starts: dict[tuple[str, str], object] = {}
        self.times: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"fwd": [], "bwd": []})
        self.last: dict[str, dict[str, float]] = {}  # the latest logged means (ms per call), for reading back

    def _start(self, name: str, kind: str):
        def hook(*_):
            self.starts[(name, kind)] = self.clock.mark()

        return hook

    def _end(self, name: str, kind: str):
        def hook(*_):
            start = self.starts.pop((name, kind), None)
            if start is not None:
                self.pending.append((name, kind, start, self.clock.mark()))

        return hook

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        matched = []
        for name, module in model.named_modules() if model is not None else ():
            if not name or not any(fnmatch.fnmatch(name, p) for p in self.patterns):
                continue
            self.handles += [
                module.register_forward_pre_hook(self._start(name, "fwd")),
                module.register_forward_hook(self._end(name, "fwd")),
                module.register_full_backward_pre_hook(self._start(name, "bwd")),
                module.register_full_backward_hook(self._end(name, "bwd")),
            ]
            matched.append(name)
        if not matched:
            logger.warning("profile_modules: no module name matches %s", ", ".join(self.patterns))
        else:
            more = f" (+{len(matched) - 5} more)" if len(matched) > 5 else ""
            logger.info("profile_modules: timing %d module(s): %s%s", len(matched), ", ".join(matched[:5]), more)

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.synchronize()
        for name, kind, start, end in self.pending:
            self.times[name][kind].append(self.clock.elapsed_ms(start, end))
        self.pending.clear()

    def on_log(self, args, state, control, **kwargs):
        if not self.times:
            return
        lines = [f"module times at step {state.global_step} (ms per call, mean):"]
        for name in sorted(self.times):
            fwd, bwd = self.times[name]["fwd"], self.times[name]["bwd"]
            means = {k: sum(v) / len(v) if v else 0.0 for k, v in (("fwd", fwd), ("bwd", bwd))}
            self.last[name] = means
            lines.append(
                f"  {name}: fwd {means['fwd']:.3f} ({len(fwd)} calls), bwd {means['bwd']:.3f} ({len(bwd)} calls)"
            )
        logger.info("\n".join(lines))  # rank 0 only: other ranks log warnings only
        self.times.clear()

    def on_train_end(self, args, state, control, **kwargs):
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
