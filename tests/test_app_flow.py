"""The whole flow in the app with a real training subprocess: pick a corpus → start a tiny run →
perplexity appears and falls → gradients → generate from it (the real Generator, in a worker).
"""

from __future__ import annotations

import pytest

from _fixtures_app import TINY_TEXT, pilot_test, screen_text
from test_app_screens import SIZE, wait_for

pytest.importorskip("seqtui.engine.trainer")
pytest.importorskip("seqtui.models.generate")

TINY_SETTINGS = {  # a model that trains in about a second once the kernels are compiled
    "hidden": "16", "batch_size": "4", "num_steps": "8", "steps": "150", "progress_every": "5",
    "val_every": "25", "grad_profile_every": "10", "sample_every": "50", "checkpoint_every": "50",
}


@pilot_test
async def test_pick_train_watch_generate(tmp_path, monkeypatch):
    from seqtui.ui.app import make_app
    from seqtui.data.corpora import add_corpus
    from seqtui.engine.runs import get_run

    monkeypatch.setenv("SEQTUI_DATA_DIR", str(tmp_path / "data"))
    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    add_corpus("tiny", corpus)
    app = make_app(screen="corpora", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        # 1. pick the corpus with the keyboard: it is the last row of the list
        table = app.screen.query_one("DataTable")
        await wait_for(pilot, lambda: table.row_count > 0)
        table.focus()
        await pilot.press(*["down"] * (table.row_count - 1))
        await wait_for(pilot, lambda: app.screen.selected is not None and app.screen.selected.name == "tiny")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "train" and app.screen.showing_form)
        form = app.screen.query_one("TrainForm")
        assert form.values()["corpus"] == "tiny"
        # 2. a tiny model, typed into the form
        for key, value in TINY_SETTINGS.items():
            form.query_one(f"#f-{key}").focus()
            await pilot.press("ctrl+u", *value)
        assert form.valid_config is not None, str(form.query_one("#form-status").render())
        assert form.valid_config["hidden"] == 16 and form.valid_config["steps"] == 150
        await pilot.press("ctrl+s")
        # 3. the run trains in its own process; its perplexity reaches the screen and falls
        await wait_for(pilot, lambda: app.state is not None and app.state.name == "tiny-gru", timeout=20)
        run = get_run(app.state.path)
        assert run.pid is not None and run.pid != __import__("os").getpid()
        await wait_for(pilot, lambda: len(app.state.train) >= 30, timeout=90)
        await pilot.pause(0.6)
        text = screen_text(app)
        assert "perplexity" in text and "tiny-gru" in text
        ppl = [p for _, p in app.state.train]
        assert sum(ppl[-5:]) / 5 < sum(ppl[:5]) / 5, ppl
        await wait_for(pilot, lambda: app.state.status == "finished", timeout=90)
        assert app.state.val and app.state.best_val is not None
        await wait_for(pilot, lambda: app.state.baseline is not None, timeout=60)  # n-gram line
        # 4. gradients of the last window
        await pilot.press("f4")
        await pilot.pause(0.6)
        assert "t=8" in screen_text(app)
        # 5. generate from the trained run
        await pilot.press("f6")
        screen = app.screen
        await wait_for(pilot, lambda: screen.run_path == app.state.path, timeout=10)
        await pilot.press(*"the ")

        def finished_for_prompt() -> bool:
            subtitle = str(screen.query_one("#gen-out").border_subtitle)
            return (str(screen.query_one("#gen-text").render()).startswith("the ")
                    and "tokens" in subtitle and "…" not in subtitle)

        await wait_for(pilot, finished_for_prompt, timeout=60)
        out = str(screen.query_one("#gen-text").render())
        assert len(out) > 100  # the prompt and 200 sampled characters
        assert "step 150" in screen_text(app)
