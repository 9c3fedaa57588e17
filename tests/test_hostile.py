"""Hostile inputs against the real CLI (issue 13, "Hardening"), one subprocess per case.

Every case runs ``python -m seqtui`` with a 4 GiB address-space cap and a timeout: no case may
hang, print a traceback, delete something that is not a run, or leave a process training.
Tiny corpora and ``--steps 2 --hidden 8`` keep the whole file to well under two minutes.
Tests run as root, where file permissions are not enforced: a read-only directory is simulated
by a path whose parent is a regular file (the one case needing a real chmod is skipped as root).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 4 << 30
TIMEOUT = 60
TINY = ["--steps", "2", "--hidden", "8", "--num-steps", "8", "--batch-size", "4",
        "--sample-every", "0", "-q"]


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-2000:]}\n--- stderr\n{self.err[-2000:]}"

    def one_line_error(self, *words: str) -> "Result":
        assert self.code == 2, self
        lines = [ln for ln in self.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), self
        for w in words:
            assert w in lines[0], self
        return self


def _env(home: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), SEQTUI_DATA_DIR=str(home / "data"),
               SEQTUI_CACHE_DIR=str(home / "cache"), COLUMNS="80", TERM="dumb")
    env.update(extra)
    return env


def cli(home: Path, *args: str, input: str | None = None, timeout: float = TIMEOUT, **env) -> Result:
    proc = subprocess.run([sys.executable, "-m", "seqtui", *map(str, args)], env=_env(home, **env),
                          input=input, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_cap, cwd=home, stdin=None if input is not None else subprocess.DEVNULL)
    result = Result(proc)
    assert "Traceback" not in result.err, result
    assert result.code >= 0, result  # not killed by a signal (a segfault, the memory cap)
    return result


def popen(home: Path, *args: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqtui", *map(str, args)], env=_env(home, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_cap, cwd=home, stdin=subprocess.DEVNULL)


def text_corpus(path: Path, n: int = 400) -> Path:
    words = "the quick brown fox jumps over the lazy dog and then it sleeps".split()
    path.write_text(" ".join(words[i % len(words)] for i in range(n)) + "\n", encoding="utf-8")
    return path


def run_names(home: Path) -> set[str]:
    root = home / "data" / "runs"
    return set(os.listdir(root)) if root.is_dir() else set()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own unreaped child) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def has(path: Path, data: bytes) -> bool:
    try:
        return data in path.read_bytes()
    except OSError:
        return False


def wait_for(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# ----------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="module")
def _no_stray_trainers():
    """Whatever a failing test left behind, kill the trainers this file started (by their pid)."""
    started: list[Path] = []
    _no_stray_trainers.roots = started
    yield
    for root in started:
        for pid_file in root.glob("data/runs/*/pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _track(home: Path) -> Path:
    getattr(_no_stray_trainers, "roots", []).append(home)
    return home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    h = _track(tmp_path_factory.mktemp("hostile"))
    text_corpus(h / "tiny.txt")
    (h / "empty.txt").write_bytes(b"")
    (h / "binary.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 200)
    (h / "short.txt").write_text("hello there\n")
    os.mkfifo(h / "fifo")
    os.symlink(h / "loop", h / "loop")
    os.symlink(h / "nowhere", h / "broken")
    os.mkdir(h / "adir")
    os.symlink("/dev/zero", h / "zero-link")
    return h


@pytest.fixture(scope="module")
def done(home):
    """A finished run 'done' (2 steps)."""
    r = cli(home, "train", home / "tiny.txt", "--name", "done", *TINY)
    assert r.code == 0, r
    return home / "data" / "runs" / "done"


HOSTILE = {  # path (relative to home) -> words of the true message
    "/dev/zero": "device", "fifo": "FIFO", "loop": "symlink loop", "adir": "directory",
    "/proc/self/status": "virtual", "broken": "broken symlink", "empty.txt": "empty",
    "zero-link": "device",
}


# -- 1. unbounded reads ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["corpora show", "ngram", "train", "corpora add x"])
def test_hostile_corpora_get_a_true_message_and_no_run(home, command):
    picks = {"corpora show": HOSTILE, "ngram": ("/dev/zero", "loop"), "train": ("fifo", "loop", "empty.txt"),
             "corpora add x": ("fifo", "adir")}[command]
    cases = {k: HOSTILE[k] for k in picks}
    for path, words in cases.items():  # relative names: the cwd is home
        extra = TINY if command == "train" else []
        before = run_names(home)
        cli(home, *command.split(), path, *extra).one_line_error(words)
        assert run_names(home) == before  # class 10: a refused train leaves no run directory


def test_eval_corpus_and_config_files_are_checked_before_reading(home, done):
    for name in ("/dev/zero", "fifo", "loop", "/proc/self/status", "broken"):
        cli(home, "eval", "done", "--corpus", name).one_line_error(HOSTILE[name])
    for name in ("/dev/zero", "fifo", "loop"):
        cli(home, "train", "tiny.txt", "--config", name, *TINY).one_line_error(HOSTILE[name])
    cli(home, "eval", "done", "--corpus", "binary.bin").one_line_error("binary")


def test_a_checkpoint_that_links_to_a_device_is_refused_by_generate_eval_and_resume(home, done, tmp_path):
    import shutil

    copy = home / "data" / "runs" / "ck-device"
    shutil.copytree(done, copy, symlinks=True)
    for kind in ("best", "latest"):
        target = copy / "checkpoints" / f"{kind}.safetensors"
        target.unlink()
        os.symlink("/dev/zero", target)
    cli(home, "generate", "ck-device", "hi", "-n", "5").one_line_error("device")
    cli(home, "eval", "ck-device").one_line_error("device")
    for kind in ("best", "latest"):
        target = copy / "checkpoints" / f"{kind}.safetensors"
        target.unlink()
        os.mkfifo(target)
    cli(home, "generate", "ck-device", "hi", "-n", "5").one_line_error("FIFO")
    cli(home, "runs", "resume", "ck-device", "--steps", "4", "-q").one_line_error("FIFO")
    cli(home, "runs", "rm", "-y", "ck-device")


# -- 2. destructive commands verify their target ------------------------------------------------------
def test_rm_refuses_what_is_not_a_run(home, done, tmp_path):
    runs = home / "data" / "runs"
    project = runs / "project"  # a config.json beside other files
    project.mkdir()
    (project / "config.json").write_text('{"corpus": "x", "cell": "gru"}')
    (project / "thesis.tex").write_text("precious")
    cli(home, "runs", "rm", "-y", "project").one_line_error("not a seqtui run directory")
    assert (project / "thesis.tex").exists()
    lone = runs / "lone"  # only a config.json, but not a run's
    lone.mkdir()
    (lone / "config.json").write_text('{"name": "my app"}')
    cli(home, "runs", "rm", "-y", "lone").one_line_error("not a seqtui run config")
    assert (lone / "config.json").exists()
    os.symlink(done, runs / "alias")  # a symlink to a real run, by name and by path
    cli(home, "runs", "rm", "-y", "alias").one_line_error("symlink")
    cli(home, "runs", "rm", "-y", runs / "alias").one_line_error("symlink")
    assert (done / "config.json").exists()
    os.unlink(runs / "alias")
    # several runs at once: refused as a whole when one of them is not a run
    cli(home, "runs", "rm", "-y", "done", "project").one_line_error("not a seqtui run directory")
    assert (done / "config.json").exists()


def test_rm_does_not_follow_a_symlink_inside_checkpoints(home, tmp_path):
    assert cli(home, "train", "tiny.txt", "--name", "linked", *TINY).code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    run = home / "data" / "runs" / "linked"
    os.symlink(outside, run / "checkpoints" / "elsewhere")
    os.symlink(outside / "keep.txt", run / "checkpoints" / "best.safetensors.bak")
    r = cli(home, "runs", "rm", "-y", "linked")
    assert r.code == 0 and not run.exists(), r
    assert (outside / "keep.txt").read_text() == "keep"


def test_rm_answer_no_exits_1_and_filters_by_status(home, tmp_path):
    assert cli(home, "train", "tiny.txt", "--name", "keepme", *TINY).code == 0
    r = cli(home, "runs", "rm", "keepme", input="n\n")
    assert r.code == 1 and "aborted" in r.err, r
    assert (home / "data" / "runs" / "keepme").is_dir()
    for name in ("f1", "f2"):  # two failed runs (a v0.1-style layout: no marker)
        d = home / "data" / "runs" / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"corpus": "tiny.txt", "cell": "gru"}))
        (d / "events.jsonl").write_text(json.dumps({"v": 1, "type": "start", "step": 0}) + "\n"
                                        + json.dumps({"v": 1, "type": "end", "status": "failed",
                                                      "step": 0}) + "\n")
    r = cli(home, "runs", "rm", "--failed", "-y")
    assert r.code == 0 and "removed f1" in r.out and "removed f2" in r.out, r
    assert (home / "data" / "runs" / "keepme").is_dir()
    assert cli(home, "runs", "rm", "--failed", "-y").out.strip() == "no failed runs"
    r = cli(home, "runs", "rm", "-y", "keepme", "keepme")
    assert r.code == 0 and r.out.count("removed keepme") == 1, r


# -- 3. a run cannot outlive its directory --------------------------------------------------------------
def test_a_detached_run_stops_when_its_directory_is_deleted(home):
    import shutil

    r = cli(home, "train", "tiny.txt", "--name", "doomed", "--detach", "--steps", "10000000",
            "--hidden", "8", "--num-steps", "8", "--batch-size", "4", "--sample-every", "0")
    assert r.code == 0, r
    run = home / "data" / "runs" / "doomed"
    assert wait_for(lambda: (run / "pid").exists(), 30)
    pid = int((run / "pid").read_text())
    assert wait_for(lambda: has(run / "events.jsonl", b'"progress"'), 40)
    def delete() -> bool:  # like `rm -rf`, racing a trainer that may be writing a checkpoint
        shutil.rmtree(run, ignore_errors=True)
        return not run.exists()

    assert wait_for(delete, 5)
    assert wait_for(lambda: not pid_alive(pid), 8), "the trainer outlived its run directory"
    time.sleep(0.3)
    assert not run.exists()  # nothing recreated it


# -- 4. resume never silently starts over --------------------------------------------------------------
def test_resume_uses_best_when_latest_is_gone_or_corrupt_and_refuses_to_start_over(home):
    assert cli(home, "train", "tiny.txt", "--name", "res", *TINY).code == 0
    run = home / "data" / "runs" / "res"
    ck = run / "checkpoints"
    (ck / "latest.safetensors").write_bytes(b"\x00" * 40)  # unreadable latest
    r = cli(home, "runs", "resume", "res", "--steps", "4")
    assert r.code == 0 and "continuing from the best checkpoint" in r.err, r
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    notices = [e for e in events if e["type"] == "notice"]
    assert notices and notices[-1]["kind"] == "resumed_from_best"
    starts = [e for e in events if e["type"] == "start"]
    assert starts[-1]["step"] == 2 and starts[-1]["resumed"]  # from best (step 2), not from 0
    (ck / "latest.safetensors").unlink()  # missing latest
    r = cli(home, "runs", "resume", "res", "--steps", "6")
    assert r.code == 0 and "latest checkpoint is missing" in r.err, r
    for f in ck.iterdir():
        f.unlink()
    cli(home, "runs", "resume", "res", "--steps", "8").one_line_error("--fresh", "step 6")
    cli(home, "train", "--resume", "res", "--steps", "8").one_line_error("--fresh")
    r = cli(home, "runs", "resume", "res", "--steps", "3", "--fresh", "-q")
    assert r.code == 0, r
    assert json.loads(cli(home, "runs", "show", "res", "--json").out)["last_step"] == 3


def test_a_finished_run_is_extended_with_steps_or_epochs(home):
    assert cli(home, "train", "tiny.txt", "--name", "ext", *TINY).code == 0
    cli(home, "runs", "resume", "ext").one_line_error("already finished", "--steps N")
    cli(home, "runs", "resume", "ext", "--steps", "2").one_line_error("more than")
    r = cli(home, "train", "--resume", "ext", "--steps", "5", "-q")
    assert r.code == 0, r
    info = json.loads(cli(home, "runs", "show", "ext", "--json").out)
    assert info["status"] == "finished" and info["last_step"] == 5
    r = cli(home, "runs", "resume", "ext", "--epochs", "1", "-q")
    assert r.code == 0, r
    ends = [json.loads(x) for x in (home / "data" / "runs" / "ext" / "events.jsonl").read_text().splitlines()]
    assert ends[-1]["type"] == "end" and ends[-1]["status"] == "finished" and ends[-1]["step"] > 5


# -- 5. caches heal -------------------------------------------------------------------------------------
def test_a_truncated_token_cache_is_rebuilt_with_a_notice(tmp_path):
    text_corpus(tmp_path / "c.txt")
    assert cli(tmp_path, "corpora", "show", "c.txt").code == 0
    (npy,) = (tmp_path / "cache" / "tokens").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:90])
    r = cli(tmp_path, "corpora", "show", "c.txt")
    assert r.code == 0 and "notice: token cache" in r.err and "rebuilding" in r.err, r
    (meta,) = (tmp_path / "cache" / "tokens").glob("*[0-9a-f].json")
    meta.write_text("{not json")  # a corrupt index entry: rebuilt too
    r = cli(tmp_path, "ngram", "c.txt")
    assert r.code == 0 and "Traceback" not in r.err, r
    assert json.loads(meta.read_text())["n_tokens"] > 0


# -- 6. read-only places --------------------------------------------------------------------------------
def test_without_a_writable_cache_everything_works_in_memory(tmp_path):
    text_corpus(tmp_path / "c.txt")
    (tmp_path / "blocker").write_text("a file where a directory should be")
    cache = tmp_path / "blocker" / "cache"
    for args in (["corpora", "show", "c.txt"], ["ngram", "c.txt"],
                 ["train", "c.txt", "--name", "ro", *TINY]):
        r = cli(tmp_path, *args, SEQTUI_CACHE_DIR=str(cache))
        assert r.code == 0 and "working in memory" in r.err and str(tmp_path / "blocker") in r.err, r
    assert (tmp_path / "data" / "runs" / "ro" / "checkpoints" / "best.safetensors").exists()


def test_a_data_dir_that_cannot_be_written_is_named(tmp_path):
    text_corpus(tmp_path / "c.txt")
    (tmp_path / "blocker").write_text("x")
    r = cli(tmp_path, "corpora", "add", "c", "c.txt", SEQTUI_DATA_DIR=str(tmp_path / "blocker" / "data"))
    r.one_line_error("corpus registry", str(tmp_path / "blocker"))
    r = cli(tmp_path, "train", "c.txt", *TINY, SEQTUI_DATA_DIR=str(tmp_path / "blocker" / "data"))
    r.one_line_error("runs directory", str(tmp_path / "blocker"))


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: permissions are not enforced")
def test_a_read_only_cache_dir_is_named(tmp_path):  # pragma: no cover - not as root
    text_corpus(tmp_path / "c.txt")
    (tmp_path / "cache").mkdir()
    os.chmod(tmp_path / "cache", 0o500)
    try:
        r = cli(tmp_path, "corpora", "show", "c.txt")
        assert r.code == 0 and "working in memory" in r.err, r
    finally:
        os.chmod(tmp_path / "cache", 0o700)


# -- 7. concurrent writers lose nothing ------------------------------------------------------------------
def test_eight_concurrent_corpora_add_all_register(tmp_path):
    paths = [text_corpus(tmp_path / f"c{i}.txt", 50 + i) for i in range(8)]
    procs = [popen(tmp_path, "corpora", "add", f"c{i}", p) for i, p in enumerate(paths)]
    for p in procs:
        out, err = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0 and "Traceback" not in err, err
    listed = json.loads(cli(tmp_path, "corpora", "list", "--json").out)
    assert {f"c{i}" for i in range(8)} <= {c["name"] for c in listed}


# -- 8. untrusted text never drives the terminal ---------------------------------------------------------
def _no_controls(text: str) -> bool:
    return not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in text)


def test_escape_sequences_are_shown_not_obeyed(tmp_path):
    evil = tmp_path / "evil.txt"
    evil.write_text(("plain words \x1b[2J\x1b]0;owned\x07 more words \x9b31m\n") * 60, encoding="utf-8")
    r = cli(tmp_path, "corpora", "show", "evil.txt")
    assert r.code == 0 and _no_controls(r.out) and "␛[2J" in r.out, r
    r = cli(tmp_path, "corpora", "show", "evil.txt", "--json")  # JSON lets C1 (\x9b) through raw
    assert r.code == 0 and _no_controls(r.out) and json.loads(r.out), r
    r = cli(tmp_path, "corpora", "add", "ev", "evil.txt", "--title", "\x1b[31mred\x1b[0m")
    assert r.code == 0 and _no_controls(r.out), r
    r = cli(tmp_path, "corpora", "list")
    assert r.code == 0 and _no_controls(r.out) and "red" in r.out, r
    r = cli(tmp_path, "ngram", "evil.txt", "--length", "400")
    assert r.code == 0 and _no_controls(r.out), r
    assert cli(tmp_path, "train", "evil.txt", "--name", "ev", *TINY).code == 0
    r = cli(tmp_path, "generate", "ev", "\x1b[2J", "-n", "400", "--temperature", "2")
    assert r.code == 0 and _no_controls(r.out) and _no_controls(r.err), r
    r = cli(tmp_path, "corpora", "show", tmp_path / "no\x1b[2Jsuch")
    r.one_line_error("␛[2J")
    assert _no_controls(r.err)


def _rewrite_vocab(path: Path, itos: list[str], kind: str = "char") -> None:
    sys.path.insert(0, str(ROOT))
    from seqtui.engine import checkpoint as ck

    tensors, meta = ck.load_checkpoint(path)
    extra = meta.pop("extra_tensors")
    meta["vocab"] = dict(meta["vocab"], itos=itos, kind=kind)
    ck.save_checkpoint(path.parent, path.stem, tensors, meta, extra=extra)


def test_a_vocabulary_its_tokenization_cannot_produce_is_refused(tmp_path):
    text_corpus(tmp_path / "c.txt")
    assert cli(tmp_path, "train", "c.txt", "--name", "v", *TINY).code == 0
    ck = tmp_path / "data" / "runs" / "v" / "checkpoints"
    from seqtui.engine.checkpoint import read_checkpoint_meta

    itos = read_checkpoint_meta(ck / "best.safetensors")["vocab"]["itos"]
    words_ok = [itos[0]] + [f"w{i}" for i in range(1, len(itos) - 1)]
    for bad, kind, words in ((itos[:-1] + ["\x1b[2J"], "char", "characters"),
                             (words_ok + ["ok\x1bno"], "word", "control"),
                             (words_ok + ["two words"], "word", "whitespace")):
        for k in ("best", "latest"):
            _rewrite_vocab(ck / f"{k}.safetensors", bad, kind)
        r = cli(tmp_path, "generate", "v", "hi", "-n", "5").one_line_error("bad vocabulary", words)
        assert _no_controls(r.err)


# -- 9. true messages and exit codes ------------------------------------------------------------------------
def test_bad_numbers_get_one_line_and_leave_no_run(home, done):
    before = run_names(home)
    cli(home, "train", "tiny.txt", *TINY, "--seed", "-1").one_line_error("seed")
    cli(home, "train", "tiny.txt", *TINY, "--seed", str(2**63)).one_line_error("seed")
    cli(home, "generate", "done", "hi", "--seed", "-1").one_line_error("seed")
    cli(home, "ngram", "tiny.txt", "--seed", "-1").one_line_error("seed")
    cli(home, "generate", "done", "hi", "-n", "2000000").one_line_error("1,000,000")
    cli(home, "train", "tiny.txt", "--name=-x", *TINY).one_line_error("not starting with")
    cli(home, "train", "tiny.txt", *TINY, "--hidden", "200000").one_line_error()  # too big
    cli(home, "train", "short.txt", "--steps", "2").one_line_error("training split has", "the corpus has")
    cli(home, "train", "binary.bin", *TINY).one_line_error("binary")
    assert run_names(home) == before
    r = cli(home, "runs", "stop", "done", "--timeout", "-1")
    assert r.code == 2 and "timeout" in r.err.lower(), r
    r = cli(home, "eval", "done", "--corpus", "binary.bin", "--errors", "replace")
    assert r.code == 2 and "Traceback" not in r.err, r


def test_eval_errors_replace_reads_invalid_utf8(home, done):
    (home / "latin1.txt").write_bytes("caf\xe9 the quick brown fox ".encode("latin-1") * 30)
    cli(home, "eval", "done", "--corpus", "latin1.txt").one_line_error("--errors replace")
    r = cli(home, "eval", "done", "--corpus", "latin1.txt", "--errors", "replace")
    assert r.code == 0 and "perplexity" in r.out, r


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_foreground_run_stopped_by_a_signal_exits_128_plus_n(home, sig):
    name = f"sig{int(sig)}"
    p = popen(home, "train", "tiny.txt", "--name", name, "--steps", "10000000", "--hidden", "8",
              "--num-steps", "8", "--batch-size", "4", "--sample-every", "0", "-q")
    events = home / "data" / "runs" / name / "events.jsonl"
    assert wait_for(lambda: has(events, b'"progress"'), 40)
    p.send_signal(sig)
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 128 + int(sig), err
    assert "Traceback" not in err
    info = json.loads(cli(home, "runs", "show", name, "--json").out)
    assert info["status"] == "stopped" and info["pid"] is None


def test_a_detached_worker_ignores_sighup_and_exits_128_plus_n_on_sigterm(home):
    assert cli(home, "train", "tiny.txt", "--name", "worker", *TINY).code == 0
    run = home / "data" / "runs" / "worker"
    cfg = json.loads((run / "config.json").read_text())
    cfg["steps"] = 10_000_000
    (run / "config.json").write_text(json.dumps(cfg))
    p = subprocess.Popen([sys.executable, "-m", "seqtui.engine.worker", str(run)], env=_env(home),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_cap, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: has(run / "events.jsonl", b'"resumed": true'), 40)
        p.send_signal(signal.SIGHUP)  # a detached run has its own session: a stray HUP is ignored
        time.sleep(1.0)
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    end = json.loads((run / "events.jsonl").read_text().splitlines()[-1])
    assert end["type"] == "end" and end["status"] == "stopped"


# -- 11. small but real -----------------------------------------------------------------------------------------
def test_a_run_shorter_than_an_epoch_has_a_best_checkpoint_and_a_val_ppl(home):
    assert cli(home, "train", "tiny.txt", "--name", "short", *TINY).code == 0
    info = json.loads(cli(home, "runs", "show", "short", "--json").out)
    assert info["best_val_ppl"] is not None and "best" in info["checkpoints"]


def test_bom_is_stripped_and_utf16_is_named(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + b"abc abc abc\r\n" * 40)
    r = cli(tmp_path, "corpora", "show", "bom.txt", "--json")
    assert r.code == 0, r
    st = json.loads(r.out)
    tokens = {t[0] if isinstance(t, list) else t for t in st.get("top_tokens", [])}
    assert "\ufeff" not in tokens and "\ufeff" not in r.out
    (tmp_path / "u16.txt").write_bytes("hello world\n".encode("utf-16"))
    (tmp_path / "u16be.txt").write_bytes("hello world\n".encode("utf-16-be"))
    for f in ("u16.txt", "u16be.txt"):
        cli(tmp_path, "corpora", "show", f).one_line_error("UTF-16", "iconv -f UTF-16 -t UTF-8")
        cli(tmp_path, "train", f, *TINY).one_line_error("UTF-16")
    assert run_names(tmp_path) == set()


def test_runs_list_keeps_long_names_whole_and_shows_run_dir_runs(tmp_path):
    text_corpus(tmp_path / "c.txt")
    long = "a-rather-long-run-name-that-would-not-fit-in-the-name-column-" + "x" * 30
    assert cli(tmp_path, "train", "c.txt", "--name", long, *TINY).code == 0
    assert cli(tmp_path, "train", "c.txt", "--run-dir", tmp_path / "elsewhere" / "mine", *TINY).code == 0
    r = cli(tmp_path, "runs", "list")
    assert r.code == 0 and long in r.out and "mine" in r.out, r
    r = cli(tmp_path, "runs", "rm", "-y", "mine")  # the link and the run it lists go together
    assert r.code == 0 and not (tmp_path / "elsewhere" / "mine").exists(), r
    assert "mine" not in run_names(tmp_path)


def test_no_trainer_is_left_running(home):
    """Run last in this file: every run above has ended (no `running` run is left)."""
    r = cli(home, "runs", "list", "--json")
    running = [x["name"] for x in json.loads(r.out) if x["status"] == "running"]
    assert running == []
