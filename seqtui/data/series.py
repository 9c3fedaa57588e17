"""Real-valued series, resolved from a string like a corpus (issue 9, "Working with Sequences").

Sources:
  ``sine``                 the book's x_t = sin(freq·t) + ε, ε ~ N(0, noise²), t = 1..n;
                           settings as ``sine:n=1000,freq=0.01,noise=0.2,seed=0`` or keyword args
  ``sunspots`` ``co2`` ``nile`` ``elnino``
                           real series shipped as CSV inside the ``statsmodels`` wheel, read as files
                           (statsmodels is never imported; optional extra ``seqtui[series]``)
  ``PATH``                 a one-column text/CSV file, or a CSV/TSV with exactly one numeric column
  ``PATH:COLUMN``          a column of a CSV/TSV by header name or 0-based index

Every problem is a :class:`~seqtui.errors.CorpusError` (the data) or
:class:`~seqtui.errors.ConfigError` (a setting) with a one-line message that says where.
Importing this module imports numpy only.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from seqtui.files import read_bounded
from seqtui.errors import ConfigError, CorpusError

MAX_SERIES_BYTES = 256 * 1024 * 1024  # a series file larger than this is refused
MAX_SINE_POINTS = 100_000_000
SINE_DEFAULTS = {"n": 1000, "freq": 0.01, "noise": 0.2, "seed": 0}
SERIES_HINT = "pip install 'seqtui[series]'"


@dataclass(frozen=True)
class SeriesInfo:
    """What ``seqtui series list`` shows; ``available`` is False when an optional package is missing."""

    name: str
    title: str
    kind: str            # "synthetic" | "bundled" | "path"
    source: str
    description: str = ""
    licence: str = ""
    length: int | None = None  # known without reading (synthetic, bundled), else None
    available: bool = True
    install_hint: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Series:
    """A loaded series: float64 values, an optional time axis (years, dates as numbers) and labels."""

    name: str                      # the spec it was resolved from, normalised (e.g. "sine:n=1000,...")
    values: np.ndarray             # (N,) float64, finite
    info: SeriesInfo
    time: np.ndarray | None = None  # (N,) float64 or None (then 0..N-1)
    column: str = ""               # the column read, for files
    settings: dict = field(default_factory=dict)  # the sine settings, for synthetic series

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def stats(self) -> dict:
        v = self.values
        return {"name": self.name, "kind": self.info.kind, "title": self.info.title, "length": len(self),
                "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
                "std": float(v.std()), "column": self.column}


# --- bundled real series: (file inside the statsmodels package, column, how to read it) ---
_BUNDLED = {
    "sunspots": dict(file="datasets/sunspots/sunspots.csv", column="SUNACTIVITY", time="YEAR", length=309,
                     title="Yearly sunspot numbers, 1700-2008",
                     description="Wolf's yearly mean sunspot number (statsmodels' sunspots dataset).",
                     licence="public domain (statsmodels: BSD-3-Clause)"),
    "co2": dict(file="datasets/co2/co2.csv", column="co2", time=None, length=2284, fill=True,
                title="Weekly atmospheric CO2 at Mauna Loa, 1958-2001 (ppm)",
                description="Mauna Loa weekly CO2; the 59 missing weeks are linearly interpolated.",
                licence="public domain (statsmodels: BSD-3-Clause)"),
    "nile": dict(file="datasets/nile/nile.csv", column="volume", time="year", length=100,
                 title="Yearly Nile flow at Aswan, 1871-1970 (10^8 m^3)",
                 description="Annual flow of the Nile (statsmodels' nile dataset).",
                 licence="public domain (statsmodels: BSD-3-Clause)"),
    "elnino": dict(file="datasets/elnino/elnino.csv", column=None, time="YEAR", length=732, monthly=True,
                   title="Monthly Pacific sea surface temperature (El Nino), 1950-2010 (deg C)",
                   description="Monthly SST of the Nino region; the year x month table read row by row.",
                   licence="public domain (statsmodels: BSD-3-Clause)"),
}


def _statsmodels_dir() -> Path | None:
    """The installed statsmodels package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("statsmodels")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def list_series() -> list[SeriesInfo]:
    """The synthetic and bundled series (no file is read)."""
    sm = _statsmodels_dir()
    out = [SeriesInfo("sine", "sin(0.01 t) + N(0, 0.2^2) noise, t = 1..1000 (the book's series)", "synthetic",
                      "generated", "Settings: sine:n=1000,freq=0.01,noise=0.2,seed=0", "n/a",
                      length=SINE_DEFAULTS["n"])]
    for name, b in _BUNDLED.items():
        ok = sm is not None and (sm / b["file"]).is_file()
        out.append(SeriesInfo(name, b["title"], "bundled", f"PyPI package statsmodels: statsmodels/{b['file']}",
                              b["description"], b["licence"], length=b["length"], available=ok,
                              install_hint="" if ok else SERIES_HINT))
    return out


def load_series(spec: str, **settings) -> Series:
    """Resolve ``spec`` (a name, ``sine:k=v,...``, ``PATH`` or ``PATH:COLUMN``) and read the values."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("a series is needed: a name from `seqtui series list`, or PATH[:COLUMN]")
    spec = spec.strip()
    head, sep, tail = spec.partition(":")
    if head == "sine":
        return _sine(tail if sep else "", settings)
    if head in _BUNDLED and not Path(spec).exists():
        if sep:
            raise ConfigError(f"series {head!r} takes no settings (got {tail!r})")
        _no_settings(head, settings)
        return _bundled(head)
    _no_settings(spec, settings)
    path, column = _split_path(spec)
    return read_series_file(path, column)


def _no_settings(name: str, settings: dict) -> None:
    if settings:
        raise ConfigError(f"series {name!r} takes no settings (got {', '.join(sorted(settings))})")


# --- sine --------------------------------------------------------------------------------------
def _sine(text: str, overrides: dict) -> Series:
    cfg = dict(SINE_DEFAULTS)
    given = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"sine settings are key=value pairs, got {part!r} (e.g. sine:n=1000,noise=0.2)")
        given[key.strip()] = value.strip()
    given.update(overrides)
    for key, value in given.items():
        if key not in cfg:
            raise ConfigError(f"unknown sine setting {key!r} (choose {', '.join(SINE_DEFAULTS)})")
        try:
            if key in ("n", "seed"):
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                cfg[key] = int(value)
            else:
                cfg[key] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"sine setting {key} must be a number, got {value!r}") from None
    n, freq, noise, seed = cfg["n"], cfg["freq"], cfg["noise"], cfg["seed"]
    if not 1 <= n <= MAX_SINE_POINTS:
        raise ConfigError(f"sine n must be in 1..{MAX_SINE_POINTS}, got {n}")
    if not (math.isfinite(freq) and math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"sine freq must be finite and noise >= 0, got freq={freq}, noise={noise}")
    if seed < 0:
        raise ConfigError(f"sine seed must be >= 0, got {seed}")
    t = np.arange(1, n + 1, dtype=np.float64)
    values = np.sin(freq * t)
    if noise > 0:
        values += np.random.default_rng(seed).normal(0.0, noise, n)
    name = "sine:" + ",".join(f"{k}={cfg[k]}" for k in SINE_DEFAULTS)
    info = SeriesInfo("sine", f"sin({freq:g} t) + N(0, {noise:g}^2), t = 1..{n}", "synthetic", "generated",
                      length=n)
    return Series(name, values, info, time=t, settings=cfg)


def sine_series(n: int = 1000, freq: float = 0.01, noise: float = 0.2, seed: int = 0) -> Series:
    """The book's series (keyword form of ``load_series("sine", ...)``)."""
    return _sine("", dict(n=n, freq=freq, noise=noise, seed=seed))


# --- bundled -----------------------------------------------------------------------------------
def _bundled(name: str) -> Series:
    b = _BUNDLED[name]
    info = next(i for i in list_series() if i.name == name)
    sm = _statsmodels_dir()
    if not info.available or sm is None:
        raise CorpusError(f"series {name!r} needs the statsmodels package: {SERIES_HINT}")
    path = sm / b["file"]
    text = _read_text(path)
    header, rows = _parse_table(text, path, ",")
    if b.get("monthly"):
        months = header[1:]
        cols = [_column_values(rows, j, months[j - 1], path, header=True) for j in range(1, len(header))]
        values = np.stack(cols, axis=1).reshape(-1)
        years = _column_values(rows, 0, header[0], path, header=True)
        time = (years[:, None] + np.arange(12) / 12.0).reshape(-1)
        return Series(name, values, info, time=time, column="JAN..DEC")
    j = header.index(b["column"])
    values = _column_values(rows, j, b["column"], path, header=True, allow_empty=b.get("fill", False))
    if b.get("fill"):
        bad = np.isnan(values)
        idx = np.arange(values.size)
        values[bad] = np.interp(idx[bad], idx[~bad], values[~bad])
    time = None
    if b["time"]:
        time = _column_values(rows, header.index(b["time"]), b["time"], path, header=True)
    return Series(name, values, info, time=time, column=b["column"])


# --- files -------------------------------------------------------------------------------------
def _split_path(spec: str) -> tuple[Path, str | None]:
    """``PATH`` if it names something that exists, else ``PATH:COLUMN`` split at the last colon."""
    p = Path(spec).expanduser()
    if os.path.lexists(p):
        return p, None
    left, sep, right = spec.rpartition(":")
    if sep and left and os.path.lexists(Path(left).expanduser()):
        if not right:
            raise ConfigError(f"empty column name after ':' in {spec!r}")
        return Path(left).expanduser(), right
    if sep and left:
        raise CorpusError(f"no such file: {left} (and no series named {spec!r}; see `seqtui series list`)")
    raise CorpusError(f"no such file or series: {spec} (see `seqtui series list`)")


def _read_text(path: Path) -> str:
    """The file's text after checking it is a regular file of bounded size, valid UTF-8."""
    data = read_bounded(path, "series file", MAX_SERIES_BYTES, CorpusError)
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{path} looks binary (NUL bytes); give a CSV/TSV or text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(f"{path}: invalid UTF-8 at line {line}") from None


def _delimiter(text: str, path: Path) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    first = text.split("\n", 1)[0]
    for d in (",", "\t", ";"):
        if d in first:
            return d
    return ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _parse_table(text: str, path: Path, delimiter: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header or None, [(line number, cells)]): a first row with any non-numeric cell is a header.
    Blank lines at the end are ignored; a blank line inside is an empty row (reported when read)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise CorpusError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None
    while rows and not any(rows[-1][1]):
        rows.pop()
    if not rows:
        raise CorpusError(f"{path} is empty: no values")
    first = rows[0][1]
    header = None
    if any(c and not _is_number(c) for c in first):
        header = first
        rows = rows[1:]
    if not rows:
        raise CorpusError(f"{path} has a header but no values")
    return header, rows


def _column_values(rows, j: int, colname: str, path: Path, header: bool, allow_empty: bool = False) -> np.ndarray:
    out = np.empty(len(rows), np.float64)
    where = f"column {colname!r}" if header else f"column {j}"
    for i, (line, cells) in enumerate(rows):
        cell = cells[j] if j < len(cells) else ""
        out[i] = np.nan if (cell == "" and allow_empty) else _parse_cell(cell, line, where, path)
    return out


def _parse_cell(cell: str, line: int, where: str, path: Path) -> float:
    if cell == "":
        raise CorpusError(f"{path}: empty cell at line {line}, {where}")
    try:
        v = float(cell)
    except ValueError:
        shown = cell if len(cell) <= 30 else cell[:27] + "..."
        raise CorpusError(f"{path}: not a number at line {line}, {where}: {shown!r}") from None
    if not math.isfinite(v):
        raise CorpusError(f"{path}: {'NaN' if math.isnan(v) else 'infinite'} value at line {line}, {where}")
    return v


def read_series_file(path: Path | str, column: str | int | None = None) -> Series:
    """One numeric column of a CSV/TSV (by header name or 0-based index), or a one-column file.

    Streams the rows (only the chosen column is kept). A first row with any non-numeric cell is
    the header. Blank lines at the end are ignored; any other empty cell, non-number, NaN or inf
    is an error naming its line and column.
    """
    import itertools
    from array import array

    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text, path))

    def rows():
        try:
            for cells in reader:
                yield reader.line_num, [c.strip() for c in cells]
        except csv.Error as exc:
            raise CorpusError(f"{path}: malformed CSV at line {reader.line_num}: {exc}") from None

    it = rows()
    head = list(itertools.islice(it, 21))
    while head and not any(head[-1][1]) and len(head) < 21:
        head.pop()
    if not head or not any(head[0][1]):
        raise CorpusError(f"{path} is empty: no values" if not head else f"{path}: empty first line")
    header = None
    if any(c and not _is_number(c) for c in head[0][1]):
        header = head[0][1]
        head = head[1:]
    if not head:
        raise CorpusError(f"{path} has a header but no values")
    width = len(header) if header else max(len(c) for _, c in head)
    if column is None:
        if width == 1:
            j = 0
        else:
            numeric = [j for j in range(width) if all(j < len(c) and _is_number(c[j]) for _, c in head if c)]
            names = ", ".join(header) if header else f"0..{width - 1}"
            if len(numeric) != 1:
                raise ConfigError(f"{path} has {width} columns; choose one as {path}:COLUMN (columns: {names})")
            j = numeric[0]
    elif isinstance(column, int) or (isinstance(column, str) and column.isdigit()
                                       and not (header and column in header)):
        j = int(column)
        if not 0 <= j < width:
            raise ConfigError(f"{path} has no column {j} (0-based; it has {width} column{'s' * (width != 1)})")
    else:
        if header is None:
            raise ConfigError(f"{path} has no header row, so no column {column!r}; give a 0-based index")
        if column not in header:
            raise ConfigError(f"{path} has no column {column!r} (columns: {', '.join(header)})")
        j = header.index(column)
    colname = header[j] if header else str(j)
    where = f"column {colname!r}" if header else f"column {j}"
    out = array("d")
    blank = 0  # line of a pending blank line (an error unless only blank lines follow)
    for line, cells in itertools.chain(head, it):
        if not any(cells):
            blank = blank or line
            continue
        if blank:
            raise CorpusError(f"{path}: empty cell at line {blank}, {where}")
        out.append(_parse_cell(cells[j] if j < len(cells) else "", line, where, path))
    if not out:
        raise CorpusError(f"{path} has no values")
    values = np.frombuffer(out, dtype=np.float64).copy()
    info = SeriesInfo(path.name, str(path), "path", str(path), length=values.size)
    name = str(path) if column is None else f"{path}:{column}"
    return Series(name, values, info, column=colname)
