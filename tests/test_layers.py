"""The architecture, enforced: import-linter's layer contracts (pyproject.toml) and one home for
the run directory's file names."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seqtui"


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is a test dependency: pip install -e '.[test]'")
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def run_dir_names() -> list[str]:
    from seqtui.engine import rundir

    return [rundir.MARKER, rundir.CONFIG, rundir.EVENTS, rundir.LOG, rundir.CHECKPOINTS,
            *(f"{k}.safetensors" for k in rundir.KINDS), *(f"{k}.json" for k in rundir.KINDS)]


def name_pattern(names):
    """A file name as a path part: quoted (not a dict key such as data["checkpoints"]) or after a /."""
    alt = "|".join(map(re.escape, names))
    return re.compile(r"""(?<!\[)["'](%s)["']|/(%s)\b""" % (alt, alt))


def test_only_the_run_directory_module_spells_run_dir_file_names():
    names = run_dir_names()
    pattern = name_pattern(names)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and not code.lstrip().startswith(('"""', "'''")):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_name_check_would_catch_a_spelled_name(tmp_path):
    """The check above is real: a line that builds a run-dir path by name matches."""
    names = run_dir_names()
    pattern = name_pattern(names)
    assert pattern.search('path / "events.jsonl"') and pattern.search("p / 'checkpoints' / x")
    assert not pattern.search("self.events_path") and not pattern.search('data["checkpoints"] = x')


def test_the_kernels_view_of_the_cells_agrees_with_the_model_layer():
    from seqtui.kernels.sample import CELL_CODES, GATES
    from seqtui.models.choices import GATES as MODEL_GATES

    assert {cell: GATES[code] for cell, code in CELL_CODES.items()} == MODEL_GATES
