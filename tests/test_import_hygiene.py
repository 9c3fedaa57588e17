"""Layering, checked in fresh interpreters: the engine and the library never import Textual,
`seqtui --help` never imports numba, and opening the app does not wait for numba either.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NON_UI_PACKAGES = ("seqtui.engine", "seqtui.models", "seqtui.data", "seqtui.kernels")


def non_ui_modules() -> list[str]:
    """Every module below the UI, found by walking the packages (none can be silently skipped)."""
    import pkgutil

    import seqtui

    names = ["seqtui", "seqtui.errors", "seqtui.paths", "seqtui.files", "seqtui.cli"]
    for info in pkgutil.walk_packages(seqtui.__path__, "seqtui."):
        if info.name.startswith(NON_UI_PACKAGES) and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def loaded_after(code: str) -> set[str]:
    """Top-level module names in sys.modules after running ``code`` in a new interpreter."""
    probe = code + "\nimport sys\nprint('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return set(line.split()[1:])


def test_engine_and_library_never_import_textual():
    present = non_ui_modules()
    assert {"seqtui.engine.runs", "seqtui.engine.trainer", "seqtui.models.charmodel"} <= set(present)
    mods = loaded_after("\n".join(f"import {m}" for m in present))
    assert "textual" not in mods and "textual_plotext" not in mods, sorted(mods)


@pytest.mark.parametrize("args", [["--help"], ["app", "--help"], ["serve", "--help"]])
def test_help_does_not_import_numba_or_textual(args):
    mods = loaded_after(
        "from seqtui.cli import cli\n"
        "try:\n"
        f"    cli.main(args={args!r}, prog_name='seqtui', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n")
    assert "numba" not in mods
    assert "textual" not in mods and "textual_serve" not in mods


def test_opening_the_app_does_not_import_numba():
    mods = loaded_after("from seqtui.ui.app import make_app\nmake_app()")
    assert "textual" in mods
    assert "numba" not in mods  # kernels load in workers, when a screen first needs them
