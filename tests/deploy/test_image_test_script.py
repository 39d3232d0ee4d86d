"""scripts/image_test's pure parts: the FROM name it builds a stand-in for, and the pip.conf it writes.

The whole script (engine, build, run) is `make image-test`; it needs root and a container engine,
so it runs from .ci/run, not from pytest.
"""

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image_test"


def load():
    loader = importlib.machinery.SourceFileLoader("image_test", str(SCRIPT))
    spec = importlib.util.spec_from_loader("image_test", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_from_name_is_read_from_the_real_dockerfile():
    it = load()
    name = it.from_image(ROOT / "Dockerfile")
    first = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")
    )
    assert first.split()[1] == name


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (
            "FROM public.ecr.aws/docker/library/python:3.11-slim-bookworm",
            "public.ecr.aws/docker/library/python:3.11-slim-bookworm",
        ),
        ("from --platform=linux/amd64 python:3.11-slim AS build", "python:3.11-slim"),
    ],
)
def test_from_name_variants(tmp_path, line, name):
    it = load()
    (tmp_path / "Dockerfile").write_text(f"# c\n{line}\nRUN true\nFROM other\n")
    assert it.from_image(tmp_path / "Dockerfile") == name


def test_from_with_a_build_arg_is_refused(tmp_path):
    it = load()
    (tmp_path / "Dockerfile").write_text("ARG BASE=python:3.11\nFROM $BASE\n")
    with pytest.raises(it.Fail, match="cannot read a plain image name"):
        it.from_image(tmp_path / "Dockerfile")


def test_pip_conf_keeps_network_indexes_and_the_ca_only(tmp_path, monkeypatch):
    it = load()
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    listing = (
        f"global.cert='{ca}'\n"
        "global.extra-index-url='file:///opt/pypi/simple https://mirror.example/simple'\n"
        "global.find-links='/opt/wheels'\n"
        "global.index-url='https://pypi.example/simple'\n"
        ":env:.default-timeout='180'\n"
    )
    monkeypatch.setattr(it, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, listing, ""))
    conf, bundle = it.ImageTest.host_pip_config(None)
    assert bundle == ca.read_bytes()
    assert "index-url = https://pypi.example/simple" in conf
    assert "extra-index-url = https://mirror.example/simple\n" in conf
    assert "file://" not in conf and "find-links" not in conf and "/opt/wheels" not in conf
    assert "timeout = 180" in conf
    assert "cert = /etc/ssl/certs/host-ca-bundle.crt" in conf


def test_check_prints_a_reason_or_nothing():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode in (0, 1)
    assert bool(proc.stdout.strip()) == (proc.returncode == 1)
