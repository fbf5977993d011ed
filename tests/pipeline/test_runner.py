"""The step runner: up-to-date checks, minimal re-runs, missing inputs, interruption and resume."""

from __future__ import annotations

import json

import pytest

from gwtwin import __version__
from gwtwin.errors import GwtwinError
from gwtwin.pipeline import Manifest, Pipeline, Step, fingerprint


class Chain:
    """generate -> a.txt; double: a.txt -> b.txt; total: b.txt -> c/total.txt (a directory)."""

    def __init__(self, run_dir, scale=1):
        self.calls: list[str] = []
        self.resumed: list[str] = []
        self.fail_in: str | None = None
        self.run_dir = run_dir
        self.scale = scale

    def _enter(self, ctx, name):
        self.calls.append(name)
        if ctx.resume:
            self.resumed.append(name)
        if self.fail_in == name:
            raise KeyboardInterrupt(name)

    def generate(self, ctx):
        self._enter(ctx, "generate")
        ctx.path("a.txt").write_text(" ".join(str(i * ctx.config["scale"]) for i in range(5)))

    def double(self, ctx):
        self._enter(ctx, "double")
        values = [int(v) * 2 for v in ctx.path("a.txt").read_text().split()]
        ctx.path("b.txt").write_text(" ".join(map(str, values)))

    def total(self, ctx):
        self._enter(ctx, "total")
        ctx.path("c").mkdir(exist_ok=True)
        total = sum(int(v) for v in ctx.path("b.txt").read_text().split())
        ctx.path("c/total.txt").write_text(str(total))

    def pipeline(self):
        return Pipeline(
            [
                Step("generate", self.generate, ("a.txt",), config={"scale": self.scale}),
                Step("double", self.double, ("b.txt",), ("a.txt",), config={"factor": 2}),
                Step("total", self.total, ("c",), ("b.txt",)),
            ],
            self.run_dir,
        )


def quiet(_):
    pass


def test_second_run_does_nothing(tmp_path):
    chain = Chain(tmp_path)
    first = chain.pipeline().run(log=quiet)
    assert first.ran == ["generate", "double", "total"]
    assert (tmp_path / "c" / "total.txt").read_text() == "20"
    second = chain.pipeline().run(log=quiet)
    assert second.ran == [] and second.skipped == ["generate", "double", "total"]
    assert chain.calls == ["generate", "double", "total"]


def test_deleting_an_output_reruns_only_what_depends_on_it(tmp_path):
    chain = Chain(tmp_path)
    chain.pipeline().run(log=quiet)
    (tmp_path / "b.txt").unlink()
    result = chain.pipeline().run(log=quiet)
    # double re-runs; it writes the same bytes, so total's input is unchanged and total is skipped
    assert result.ran == ["double"]
    assert [s.reason for s in result.steps if s.ran] == ["output b.txt is missing"]
    # a hand-edited output is rewritten by its step, which restores the bytes double read
    (tmp_path / "a.txt").write_text("1 1 1")
    assert chain.pipeline().run(log=quiet).ran == ["generate"]
    assert (tmp_path / "a.txt").read_text() == "0 1 2 3 4"
    (tmp_path / "c" / "total.txt").unlink()  # a file inside a directory output
    assert chain.pipeline().run(log=quiet).ran == ["total"]


def test_config_change_reruns_the_step_and_everything_downstream(tmp_path):
    Chain(tmp_path).pipeline().run(log=quiet)
    chain = Chain(tmp_path, scale=3)
    result = chain.pipeline().run(log=quiet)
    assert result.ran == ["generate", "double", "total"]
    assert result.steps[0].reason == "its configuration changed"
    assert (tmp_path / "c" / "total.txt").read_text() == "60"


def test_missing_input_names_the_step_that_writes_it(tmp_path):
    with pytest.raises(
        GwtwinError, match=r"needs .*b\.txt.*written by step 'double'.*--steps double"
    ):
        Chain(tmp_path).pipeline().run(["total"], log=quiet)


def test_interrupted_step_resumes(tmp_path):
    chain = Chain(tmp_path)
    chain.fail_in = "double"
    with pytest.raises(KeyboardInterrupt):
        chain.pipeline().run(log=quiet)
    entry = Manifest(tmp_path).steps["double"]
    assert entry["status"] == "started" and entry["code_version"].startswith(__version__)
    chain.fail_in = None
    result = chain.pipeline().run(log=quiet)
    assert result.ran == ["double", "total"]
    assert chain.resumed == ["double"]
    assert result.steps[1].reason == "interrupted (status 'started')"


def test_manifest_records_fingerprints_and_hashes(tmp_path):
    Chain(tmp_path).pipeline().run(log=quiet)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == "gwtwin-run-manifest/1"
    double = data["steps"]["double"]
    assert double["inputs"]["a.txt"] == fingerprint(tmp_path / "a.txt")
    assert double["outputs"]["b.txt"]["size"] == len("0 2 4 6 8")
    assert len(double["config_hash"]) == 64 and double["seconds"] >= 0


def test_force_and_selection(tmp_path):
    chain = Chain(tmp_path)
    chain.pipeline().run(log=quiet)
    assert chain.pipeline().run(["double"], force=True, log=quiet).ran == ["double"]
    assert chain.pipeline().run(force=["total"], log=quiet).ran == ["total"]
    assert chain.pipeline().status() == [("generate", None), ("double", None), ("total", None)]


def test_bad_requests_are_named(tmp_path):
    chain = Chain(tmp_path)
    with pytest.raises(GwtwinError, match=r"unknown step\(s\) \['trian'\].*'train'|unknown step"):
        chain.pipeline().run(["trian"], log=quiet)
    with pytest.raises(GwtwinError, match="cannot force unknown"):
        chain.pipeline().run(force=["nope"], log=quiet)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(GwtwinError, match="not valid JSON"):
        chain.pipeline().run(log=quiet)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(GwtwinError, match="expected format 'gwtwin-run-manifest/1'"):
        chain.pipeline().run(log=quiet)


def test_a_step_must_write_what_it_declares(tmp_path):
    lazy = Pipeline([Step("lazy", lambda ctx: None, ("out.h5",))], tmp_path)
    with pytest.raises(GwtwinError, match=r"step 'lazy' finished without writing .*out\.h5"):
        lazy.run(log=quiet)
    with pytest.raises(GwtwinError, match="declares no outputs"):
        Step("none", lambda ctx: None, ())
    with pytest.raises(GwtwinError, match="declared by both"):
        Pipeline([Step("a", quiet, ("x",)), Step("b", quiet, ("x",))], tmp_path)
