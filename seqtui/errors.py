"""User-facing errors: raised anywhere below the CLI/TUI, shown as one line, never a traceback."""


class SeqtuiError(Exception):
    """A problem the user can fix (bad input, unknown name, corrupt file). The message is one line."""

    exit_code = 2


class CorpusError(SeqtuiError):
    """A corpus cannot be found, read or decoded, or is too short."""


class ConfigError(SeqtuiError):
    """An absurd or inconsistent hyperparameter."""


class CheckpointError(SeqtuiError):
    """A checkpoint is missing, corrupt, truncated or does not match the model/vocabulary."""


class RunError(SeqtuiError):
    """An unknown run, or a run in the wrong state for the request."""


class TrainingDiverged(SeqtuiError):
    """The loss or the gradients became NaN/Inf."""
