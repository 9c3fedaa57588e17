"""``python -m seqtui.engine.worker RUN_DIR``: the detached training process of one run.

The engine starts it (``seqtui.engine.process.spawn_worker``); it trains the run from its
latest checkpoint (a series run — ``"kind": "series"`` in its config — with
``seqtui.engine.series_trainer.SeriesTrainer``, any other with the text trainer), ignores
SIGHUP, and exits with the run's outcome: 0 finished, 128 + signal number when a signal stopped it (checkpointed first), 2 for a user-facing error (written to the run's events
and, as one line, to its log).
"""

from __future__ import annotations

import sys

from seqtui.engine.rundir import RunDir
from seqtui.engine.lifecycle import exit_code
from seqtui.errors import SeqtuiError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m seqtui.engine.worker RUN_DIR", file=sys.stderr)
        return 2
    rundir = RunDir(args[0])
    if rundir.kind() == "series":
        from seqtui.engine.series_trainer import SeriesTrainer as Trainer
    else:
        from seqtui.engine.trainer import Trainer

    try:
        trainer = Trainer(rundir, detached=True)
        trainer.run()
    except SeqtuiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return exit_code(trainer.stop_reason)


if __name__ == "__main__":
    sys.exit(main())
