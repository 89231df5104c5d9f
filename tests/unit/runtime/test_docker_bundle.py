"""DockerRuntime's bundle verbs against canned docker-py answers (no engine)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from lem.runtime.bundle import ImageFacts
from lem.runtime.bundle_manifest import PythonInfo
from lem.runtime.docker import DockerRuntime
from lem.runtime.errors import LemRuntimeError
from lem.runtime.images import plan_build
from tests.unit.runtime.fake_docker import FakeImage, FakeImages, api_error


class Api:
    def __init__(self, load_events: list[dict[str, str]]) -> None:
        self.load_events = load_events
        self.loaded = b""
        self.build_kwargs: dict[str, Any] = {}

    def get_image(self, reference: str) -> Iterator[bytes]:
        yield from (b"tar-", b"of-", reference.encode())

    def load_image(self, data: io.BytesIO) -> Iterator[dict[str, str]]:
        self.loaded = data.read()
        yield from self.load_events

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.build_kwargs = kwargs
        yield {"aux": {"ID": "sha256:built"}}


class Containers:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def run(self, *args: Any, **kwargs: Any) -> bytes:
        self.calls.append((args, kwargs))
        return b"3.11 cp311\n"


class Client:
    def __init__(self, load_events: list[dict[str, str]] | None = None) -> None:
        image = FakeImage("base:1")
        image.attrs.update(RepoDigests=["base@sha256:" + "ab" * 32], Architecture="amd64")
        self.images = FakeImages({"base:1": image})
        self.api = Api(load_events or [{"stream": "Loaded image: base:1\n"}])
        self.containers = Containers()
        self.pulled: list[tuple[str, str | None]] = []

    def info(self) -> dict[str, str]:
        return {"Architecture": "x86_64", "OSType": "linux"}


def runtime(client: Client) -> DockerRuntime:
    return DockerRuntime(client=client, retry_attempts=1)


def test_engine_arch_and_image_facts() -> None:
    client = Client()
    docker_runtime = runtime(client)

    assert docker_runtime.engine_arch() == "x86_64"
    assert docker_runtime.image_facts("base:1") == ImageFacts(
        client.images.images["base:1"].id, ("base@sha256:" + "ab" * 32,), "amd64"
    )
    assert docker_runtime.image_facts("absent:1") is None


def test_the_python_probe_runs_python3_with_the_network_off() -> None:
    client = Client()

    assert runtime(client).probe_python("base:1") == PythonInfo(version="3.11", abi="cp311")
    args, kwargs = client.containers.calls[0]
    assert args == ("base:1", ["-c", args[1][1]])
    assert (kwargs["entrypoint"], kwargs["network_mode"], kwargs["remove"]) == ("python3", "none", True)


def test_save_writes_the_stream_and_load_sends_the_file() -> None:
    client = Client()
    out = io.BytesIO()
    runtime(client).save_image("base:1", out)
    assert out.getvalue() == b"tar-of-base:1"

    runtime(client).load_images(io.BytesIO(b"saved bytes"))
    assert client.api.loaded == b"saved bytes"


def test_a_load_error_becomes_a_message() -> None:
    client = Client([{"error": "archive/tar: invalid tar header"}])
    with pytest.raises(LemRuntimeError, match="docker load failed: archive/tar: invalid tar header"):
        runtime(client).load_images(io.BytesIO(b"junk"))


def test_pull_splits_the_tag_and_a_refusal_becomes_a_message() -> None:
    class Images(FakeImages):
        def __init__(self) -> None:
            super().__init__({})
            self.pulls: list[tuple[str, str | None]] = []

        def pull(self, repository: str, tag: str | None = None) -> None:
            self.pulls.append((repository, tag))
            if repository.startswith("private"):
                raise api_error(404, "pull access denied")

    client = Client()
    client.images = Images()
    runtime(client).pull_image("nvcr.io/nvidia/tensorrt-llm/release:1.0.0")
    assert client.images.pulls == [("nvcr.io/nvidia/tensorrt-llm/release", "1.0.0")]
    with pytest.raises(LemRuntimeError, match="docker pull private/x:1 failed: pull access denied"):
        runtime(client).pull_image("private/x:1")


def test_a_bundle_build_asks_for_no_network_and_no_cache() -> None:
    client = Client()
    plan = replace(plan_build("pytorch", "cpu"), network="none", nocache=True)

    assert runtime(client).build_image(plan, io.BytesIO(b""), lambda _line: None) == "sha256:built"
    assert (client.api.build_kwargs["network_mode"], client.api.build_kwargs["nocache"]) == ("none", True)
    plain = plan_build("pytorch", "cpu")
    runtime(client).build_image(plain, io.BytesIO(b""), lambda _line: None)
    assert (client.api.build_kwargs["network_mode"], client.api.build_kwargs["nocache"]) == (None, False)
