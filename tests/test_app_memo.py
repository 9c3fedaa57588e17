"""Memorization figures (issue 11) in the Generate screen and the Train screen's samples: the
copied spans are highlighted, the figures are said in one line, and the index is built once per
run in a worker (a fake index here; one test builds the real one over a tiny corpus)."""

from __future__ import annotations

import time

from _fixtures_app import (TINY_TEXT, FakeMemoIndex, add_checkpoint_files, base_config, fake_loader,
                           fake_memo_loader, pilot_test, record_run, screen_text)
from test_app_screens import runs_dir  # noqa: F401 - fixture
from seqtui.ui.app import make_app
from seqtui.ui.memo import MEMO_STYLE, MemoIndexes, memo_line, memo_text

SIZE = (80, 24)


async def wait_for(pilot, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        await pilot.pause(0.05)


def test_memo_text_and_line():
    index = FakeMemoIndex("the earth was without form")
    text = "xx the earth was without form yy"
    score = index.score(text)
    assert score.longest_len == 26 and score.char_spans == [(3, 29)]
    shown = memo_text(text, score)
    assert shown.plain == text and [(s.start, s.end, str(s.style)) for s in shown.spans] == [(3, 29, MEMO_STYLE)]
    assert memo_line(score) == "copied: longest 26 chars (training line 1) · 81% in runs ≥ 20"
    assert memo_line(index.score("zzz")) == "copied: nothing from the training text"
    assert memo_text("other text", score).spans == []  # spans of another string are not applied
    assert memo_line(None) == "" and "words" in memo_line(score, is_char=False)


def test_indexes_are_built_once_and_failures_said_once(tmp_path):
    calls = []

    def loader(path):
        calls.append(path)
        if path.name == "bad":
            raise OSError("corpus gone")
        return FakeMemoIndex()

    memo = MemoIndexes(loader)
    assert memo.score(tmp_path / "a", "and the earth was without form").longest_len > 20
    memo.score(tmp_path / "a", "more")
    assert memo.score(tmp_path / "bad", "x") is None and memo.score(tmp_path / "bad", "y") is None
    assert calls == [tmp_path / "a", tmp_path / "bad"] and memo.error(tmp_path / "bad") == "corpus gone"


@pilot_test
async def test_generate_highlights_copied_text(runs_dir):
    add_checkpoint_files(record_run("genesis-gru", status="finished"))
    index = FakeMemoIndex()
    app = make_app(screen="generate", cursor_blink=False, generator_loader=fake_loader(),
                   memo_loader=fake_memo_loader(index))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.run_path is not None)
        await pilot.press(*"In the")
        await wait_for(pilot, lambda: screen.memo_score is not None)
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "copied: longest 44 chars (training line 1) · 100% in runs ≥ 20" in text
        rendered = screen.query_one("#gen-text").render()
        assert any(str(s.style) == MEMO_STYLE or "underline" in str(s.style) for s in rendered.spans)
        assert index.scored and index.scored[-1].startswith("nd the earth")  # the continuation only
        # a new request drops the old figures until the new continuation is scored
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.memo_score is not None and index.scored[-1].startswith("d the"))


@pilot_test
async def test_train_sample_shows_memorization(runs_dir):
    record_run("genesis-gru", status="finished")
    app = make_app(cursor_blink=False, memo_loader=fake_memo_loader())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state is not None and app.state.last_sample is not None)
        await wait_for(pilot, lambda: app.screen.memo_score is not None)
        await pilot.pause(0.6)
        text = screen_text(app)
        assert "copied: longest 55 chars (training line 1) · 67% in runs ≥ 20" in text


def test_real_index_over_a_tiny_corpus(runs_dir, tmp_path):
    """The app's loader builds the run's index from its config (tokenizes, suffix array)."""
    from seqtui.ui.memo import load_memo_index

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    path = record_run("tiny-gru", status="finished", config=base_config(corpus=str(corpus)))
    index = load_memo_index(path)
    score = index.score("the time traveller (for so it will be convenient to speak of him) zzqq")
    assert score.longest_len >= 60 and score.covered_fraction > 0.8
    assert memo_text(score.text, score).spans
