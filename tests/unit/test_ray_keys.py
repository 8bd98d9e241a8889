"""The Ray keys' checks: when a run goes to Ray, and the one-line errors before any process or cluster starts.
(The Ray run itself: tests/integration/test_ray.py.)"""

from __future__ import annotations

import importlib
import sys

import pytest

from tuneforge.config import load_config
from tuneforge.config.ray_keys import ray_init_kwargs, ray_requested
from tuneforge.errors import UserError
from tuneforge.train import ray_launch
from tuneforge.train.run import run_training


@pytest.fixture(autouse=True)
def no_ray_env(monkeypatch):
    monkeypatch.delenv("USE_RAY", raising=False)


def load(*overrides: str):
    return load_config(None, ["model_name_or_path=m", *overrides])


@pytest.mark.parametrize("value, asked", [("1", True), ("true", True), ("y", True), ("0", False), ("", False)])
def test_use_ray_switch_reads_like_lf(monkeypatch, value, asked):
    monkeypatch.setenv("USE_RAY", value)
    assert ray_requested(load()) is asked


def test_more_than_one_worker_is_a_ray_run_without_the_switch():
    assert ray_requested(load("ray_num_workers=2"))
    assert not ray_requested(load())


@pytest.mark.parametrize("key, value", [("ray_init_kwargs", '{"num_cpus": 2}'), ("master_addr", "10.0.0.1")])
def test_ray_only_keys_without_ray_are_refused(key, value):
    with pytest.raises(UserError, match=f"'{key}' only applies to a Ray run") as info:
        load(f"{key}={value}")
    assert "ray_num_workers" in info.value.fix


def test_ray_init_kwargs_json_string_is_a_mapping_and_bad_json_is_refused():
    assert ray_init_kwargs(load("ray_num_workers=2", 'ray_init_kwargs={"num_cpus": 2}')) == {"num_cpus": 2}
    with pytest.raises(UserError, match="ray_init_kwargs"):
        load("ray_num_workers=2", "ray_init_kwargs=num_cpus")


def test_bad_master_port_and_worker_count_are_refused():
    with pytest.raises(UserError, match="master_port"):
        load("ray_num_workers=2", "master_port=http")
    with pytest.raises(UserError, match="ray_num_workers must be at least 1"):
        load("ray_num_workers=0")


def test_missing_ray_package_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, find_spec("ray") is None
    monkeypatch.setenv("USE_RAY", "1")
    with pytest.raises(UserError) as info:
        load()
    assert "'ray' package" in info.value.message and "pip install 'ray[train]'" in info.value.fix
    assert "\n" not in info.value.one_line()


def test_ray_and_torchrun_together_are_refused_before_ray_starts(monkeypatch):
    cfg = load("ray_num_workers=2")
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before `import ray`: that would fail differently
    with pytest.raises(UserError, match="Ray and torchrun"):
        ray_launch.run_on_ray(cfg, nproc=2)


def test_a_ray_config_run_in_one_process_is_refused_not_ignored():
    with pytest.raises(UserError, match="asks for Ray workers"):
        run_training(load("ray_num_workers=2"))


NODES = [  # what ray.nodes() reports: two alive nodes, the head second by address, and a dead one
    {"NodeID": "a", "NodeManagerAddress": "10.0.0.2", "Alive": True, "Resources": {"node:__internal_head__": 1.0}},
    {"NodeID": "b", "NodeManagerAddress": "10.0.0.1", "Alive": True, "Resources": {}},
    {"NodeID": "c", "NodeManagerAddress": "10.0.0.9", "Alive": False, "Resources": {}},
]


class FakeRay:
    def nodes(self):
        return NODES


def test_master_addr_is_the_head_node_by_default_and_must_be_an_alive_node():
    assert ray_launch._master_addr(FakeRay(), load("ray_num_workers=2")) == "10.0.0.2"
    assert ray_launch._master_addr(FakeRay(), load("ray_num_workers=2", "master_addr=10.0.0.1")) == "10.0.0.1"
    with pytest.raises(UserError, match="not an alive node") as info:
        ray_launch._master_addr(FakeRay(), load("ray_num_workers=2", "master_addr=10.0.0.9"))
    assert "10.0.0.1" in info.value.fix and "10.0.0.9" not in info.value.fix


def test_rank_zero_runs_on_master_addr_and_ranks_count_per_node(monkeypatch):
    table = {"bundles_to_node_id": {0: "b", 1: "a", 2: "b", 3: "a"}}
    module = importlib.import_module("ray.util.placement_group")  # ray.util.placement_group is also a function
    monkeypatch.setattr(module, "placement_group_table", lambda group: table)
    # (bundle, local rank, workers on that node) for ranks 0..3: master_addr's node first, as LF sorts them
    assert ray_launch._ranked_bundles(FakeRay(), None, "10.0.0.2") == [(1, 0, 2), (3, 1, 2), (0, 0, 2), (2, 1, 2)]
    assert ray_launch._ranked_bundles(FakeRay(), None, "10.0.0.1") == [(0, 0, 2), (2, 1, 2), (1, 0, 2), (3, 1, 2)]


def test_each_worker_gets_the_process_group_of_master_addr_and_master_port(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    env = ray_launch._worker_env(3, 4, 1, 2, "10.0.0.2", "29611")
    assert {k: env[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")} == {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
    }
    assert (env["MASTER_ADDR"], env["MASTER_PORT"]) == ("10.0.0.2", "29611")
    assert env["HF_HUB_OFFLINE"] == "1" and "CUDA_VISIBLE_DEVICES" not in env  # Ray assigns each GPU worker its own
