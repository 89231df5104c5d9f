"""The processes of ``pytorch.num_processes`` data parallelism.

Each worker is a spawned Python process with its own ``CUDA_VISIBLE_DEVICES`` (its group of the
measured GPUs) and CPU affinity (its share of the CPUs), set before it imports torch. It loads
its own copy of the model with a one-process PyTorchEngine, then serves requests over a pipe:
``generate`` / ``prefill`` a shard of prompts, ``peak_memory``, ``reset_peak_memory``, ``close``.
The parent sends every worker its shard of a batch at once and waits for all of them
(pytorch_shards.py has the pure bookkeeping). A worker whose parent dies sees its pipe close and exits.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lem_harness.backend_sections import PyTorchConfig
from lem_harness.engines.base import BatchResult, EngineUnavailableError
from lem_harness.engines.pytorch_shards import (
    gpu_groups,
    merge_shards,
    shard_batch,
    worker_cpus,
    worker_visible_devices,
)
from lem_harness.experiment import ExperimentConfig

JOIN_WAIT_S = 30.0


def worker_config(config: ExperimentConfig, gpus: tuple[int, ...]) -> ExperimentConfig:
    """A worker's own config: its GPUs, one process."""
    section = config.backend_section()
    assert isinstance(section, PyTorchConfig)
    data = config.model_dump(mode="json")
    data["gpus"] = list(gpus)
    data["pytorch"] = {**section.model_dump(mode="json"), "num_processes": 1}
    return ExperimentConfig.model_validate(data)


def _serve(engine: Any, verb: str, payload: Any) -> Any:
    if verb == "generate":
        return engine.generate(payload)
    if verb == "prefill":
        return engine.generate_prefill(payload)
    if verb == "peak_memory":
        return engine.peak_memory_bytes()
    if verb == "reset_peak_memory":
        return engine.reset_peak_memory()
    raise ValueError(f"unknown request {verb!r}")


def worker_main(config_json: str, env: dict[str, str], cpus: list[int], conn: Any) -> None:
    """Entry point of a worker process (spawned: nothing inherited but these arguments)."""
    os.environ.update(env)
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    from lem_harness.engines.pytorch import PyTorchEngine

    engine = PyTorchEngine(ExperimentConfig.model_validate_json(config_json))
    try:
        engine.load()
        conn.send(("ok", engine.notes()))
    except Exception as e:  # reported to the parent, which raises it there
        conn.send(("unavailable" if isinstance(e, EngineUnavailableError) else "error", f"{e}"))
        return
    while True:
        try:
            verb, payload = conn.recv()
        except EOFError:
            break
        if verb == "close":
            engine.close()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", _serve(engine, verb, payload)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


class WorkerPool:
    """The running workers of one experiment, in GPU-group order."""

    def __init__(self, processes: list[Any], conns: list[Any]) -> None:
        self._processes = processes
        self._conns = conns
        self.notes: list[str] = []

    @classmethod
    def start(cls, config: ExperimentConfig, env: Mapping[str, str], cpus: Sequence[int]) -> WorkerPool:
        section = config.backend_section()
        assert isinstance(section, PyTorchConfig)
        n = section.num_processes
        visible = worker_visible_devices(env.get("CUDA_VISIBLE_DEVICES"), config.gpus, n)
        context = multiprocessing.get_context("spawn")
        processes: list[Any] = []
        conns: list[Any] = []
        for group, devices, share in zip(
            gpu_groups(config.gpus, n), visible, worker_cpus(cpus, n), strict=True
        ):
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main,
                args=(
                    worker_config(config, group).model_dump_json(),
                    {"CUDA_VISIBLE_DEVICES": devices},
                    share,
                    child,
                ),
                name=f"lem-pytorch-worker-{len(processes)}",
                daemon=True,
            )
            process.start()
            child.close()
            processes.append(process)
            conns.append(parent)
        pool = cls(processes, conns)
        try:
            for notes in pool._receive_all("load"):
                pool.notes.extend(n for n in notes if n not in pool.notes)
        except BaseException:
            pool.close()
            raise
        return pool

    def _receive_all(self, what: str) -> list[Any]:
        out = []
        for index, conn in enumerate(self._conns):
            try:
                status, value = conn.recv()
            except EOFError as e:
                raise RuntimeError(f"pytorch worker {index} exited during {what}") from e
            if status == "unavailable":
                raise EngineUnavailableError(value)
            if status != "ok":
                raise RuntimeError(f"pytorch worker {index} failed during {what}: {value}")
            out.append(value)
        return out

    def broadcast(self, verb: str) -> list[Any]:
        for conn in self._conns:
            conn.send((verb, None))
        return self._receive_all(verb)

    def generate(self, prompts: Sequence[Sequence[int]], *, prefill: bool) -> BatchResult:
        """Each worker generates its shard, all at once; results merged in batch order."""
        shards = shard_batch(len(prompts), len(self._conns))
        busy = [(conn, piece) for conn, piece in zip(self._conns, shards, strict=True) if piece]
        start = time.perf_counter()
        for conn, piece in busy:
            conn.send(("prefill" if prefill else "generate", [list(prompts[i]) for i in piece]))
        results = [self._receive_one(conn) for conn, _ in busy]
        wall = time.perf_counter() - start
        return merge_shards(len(prompts), [piece for _, piece in busy], results, wall)

    def _receive_one(self, conn: Any) -> Any:
        index = self._conns.index(conn)
        status, value = conn.recv()
        if status != "ok":
            raise RuntimeError(f"pytorch worker {index} failed: {value}")
        return value

    def close(self) -> None:
        for conn, process in zip(self._conns, self._processes, strict=True):
            if process.is_alive():
                try:
                    conn.send(("close", None))
                    conn.recv()
                except (EOFError, BrokenPipeError, OSError):
                    pass
            process.join(JOIN_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
        self._processes, self._conns = [], []
