"""A warm worker for `tuneforge train`: one process that has imported torch, transformers, peft and datasets, and
forks a child per run.

Four seconds of every run's start are imports (torch, transformers' Trainer, peft, datasets) before a model or a
row is touched. `tuneforge warm start` pays them once, in a worker process of this environment; a later `tuneforge
train` hands its command line, folder, environment and terminal (its stdin / stdout / stderr file descriptors) to
that worker, whose forked child runs the command as the CLI would, and reports its exit status back. Ctrl-C reaches
the child; a child whose `tuneforge train` goes away is stopped. Without a worker, or when the worker cannot run a
config (one that needs bitsandbytes, HQQ or DeepSpeed, which the worker keeps out), `tuneforge train` runs as it
always does.

address.py names the worker of an environment (its socket), client.py is the `tuneforge train` side, server.py the
worker, control.py `tuneforge warm start | stop | status`. Only the standard library is imported on the client side.
"""
