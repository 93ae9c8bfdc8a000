"""`--engine ray` without its extra, and with flags it cannot honour: one line, exit status 2 (no Ray needed)."""
from __future__ import annotations

import sys

import pytest

from translate.cli import main


def test_engine_ray_without_the_extra_names_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    (tmp_path / "in").mkdir()
    assert main(["convert", "model.pt", str(tmp_path / "in"), str(tmp_path / "out"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "pip install 'translate[ray]'" in err


@pytest.mark.parametrize(("flags", "named"), [(["--shard", "0/2"], "--shard"), (["--mask-dir", "m"], "--mask-dir"),
                                              (["--workers", "0"], "--workers"),
                                              (["--gpus-per-worker", "-1"], "--gpus-per-worker")])
def test_engine_ray_refuses_flags_it_cannot_honour_in_one_line(flags, named, tmp_path, capsys):
    assert main(["convert", "model.pt", str(tmp_path), str(tmp_path / "out"), "--engine", "ray", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and named in err
