"""What seqtui keeps in its cache directory, and keeping it under a size cap.

The cache (``paths.cache_dir()``) holds datasets that can always be rebuilt:

- ``tokens/<sha256>.npy`` + ``.json`` — a corpus encoded under some settings (the ``.json`` says
  the source file and settings),
- ``bpe/<sha256>.json`` — learned BPE merges (and ``uniclass-*.npy``, a Unicode class table),
- ``memo/<key>.sa.npy``, ``.lcp.npy``, ``.json`` — memorization (suffix-array) indexes,
- ``joined/<key>.txt`` + ``.json`` — directory and glob corpora joined into one file,
- ``corpora/<name>-<key>.txt`` — bundled corpora extracted from their packages.

An *entry* is the files of one such dataset (same directory, same name up to the first dot).
Only files whose names match those patterns, that are regular files (``lstat``: a symlink is
never followed, never removed) and not hidden (temp files of writers in progress start with a
dot) belong to an entry; nothing else in the directory is touched. An entry's "last used" time
is the newest mtime of its files: loading a dataset touches it (:func:`touch`).

The cap: ``SEQTUI_CACHE_MAX_BYTES`` (bytes, or a size like ``500M``/``2GiB``, or ``off``), else
the ``seqtui cache cap`` setting (``paths.data_dir()/cache.json``), else 2 GiB. After a new token
cache entry is built, :func:`enforce_cap` removes the least recently used entries until the cache
fits, never the entry being loaded. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from seqtui import paths
from seqtui.errors import ConfigError, CorpusError
from seqtui.files import GiB, KiB, MiB, atomic_write, locked, read_text_bounded

DEFAULT_CAP = 2 * GiB
ENV_CAP = "SEQTUI_CACHE_MAX_BYTES"
SETTINGS_FILE = "cache.json"
MAX_META_BYTES = 64 * MiB  # a token entry's .json (vocabulary + counts) read for `cache list`

# kind -> (sub-directory, file-name pattern); group(1) is the entry's stem
KINDS: dict[str, tuple[str, re.Pattern]] = {
    "tokens": ("tokens", re.compile(r"^([0-9a-f]{64})\.(?:npy|json)$")),
    "bpe": ("bpe", re.compile(r"^([0-9a-f]{64}|uniclass-[0-9.]+)\.(?:json|npy)$")),
    "memo": ("memo", re.compile(r"^([A-Za-z0-9_-]{8,128})\.(?:sa\.npy|lcp\.npy|json)$")),
    "joined": ("joined", re.compile(r"^([0-9a-f]{32})\.(?:txt|json)$")),
    "corpus": ("corpora", re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9a-f]{16})\.txt$")),
}


@dataclass
class Entry:
    """One cached dataset: its files, their total size, when it was last used, what it is."""

    kind: str
    key: str
    files: list[Path]
    size: int
    last_used: float
    description: str = ""
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"kind": self.kind, "key": self.key, "size_bytes": self.size, "last_used": self.last_used,
                "description": self.description, "files": [str(f) for f in self.files], **self.details}


def _regular(path: Path) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def entries(describe: bool = False) -> list[Entry]:
    """Every entry in the cache directory, least recently used first."""
    root = paths.cache_dir()
    out: list[Entry] = []
    for kind, (sub, pattern) in KINDS.items():
        d = root / sub
        if os.path.islink(d) or not d.is_dir():
            continue  # never follow a symlinked directory
        groups: dict[str, list[tuple[Path, os.stat_result]]] = {}
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            m = pattern.match(name)
            if not m:
                continue
            st = _regular(d / name)
            if st is not None:
                groups.setdefault(m.group(1), []).append((d / name, st))
        for key, files in groups.items():
            e = Entry(kind, key, [f for f, _ in files], sum(st.st_size for _, st in files),
                      max(st.st_mtime for _, st in files))
            if describe:
                _describe(e)
            out.append(e)
    out.sort(key=lambda e: (e.last_used, e.kind, e.key))
    return out


def _read_json(path: Path) -> dict:
    if _regular(path) is None:
        return {}
    try:
        d = json.loads(read_text_bounded(path, "cache index", MAX_META_BYTES, CorpusError))
    except (CorpusError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _describe(e: Entry) -> None:
    meta_path = next((f for f in e.files if f.name.endswith(".json")), None)
    meta = _read_json(meta_path) if meta_path is not None else {}
    if e.kind == "tokens":
        s = meta.get("settings") or {}
        e.details = {"source": meta.get("source"), "corpus": meta.get("corpus"), "settings": s,
                     "n_tokens": meta.get("n_tokens")}
        what = ", ".join(f"{k} {v}" for k, v in s.items() if v not in (None, 0, "raw", "strict")) or "char"
        n = meta.get("n_tokens")
        e.description = f"{meta.get('corpus') or meta.get('source', '?')} ({what}" + (f", {n:,} tokens)" if isinstance(n, int) else ")")
    elif e.kind == "bpe":
        if e.key.startswith("uniclass-"):
            e.description = "BPE Unicode class table"
        else:
            n = meta.get("n_tokens")
            e.details = {"n_tokens": n}
            e.description = f"BPE merges ({n} tokens)" if n else "BPE merges"
    elif e.kind == "memo":
        n = meta.get("n")
        e.details = {"n_tokens": n}
        e.description = f"memorization index over {n:,} tokens" if isinstance(n, int) else "memorization index"
    elif e.kind == "joined":
        e.details = {"source": meta.get("source"), "documents": meta.get("documents"), "errors": meta.get("errors")}
        e.description = f"{meta.get('source', '?')} joined ({meta.get('documents', '?')} documents)"
    else:
        e.description = f"bundled corpus {e.key.rsplit('-', 1)[0]}"


def remove(e: Entry) -> int:
    """Delete an entry's files (regular files only, never through a symlink); bytes freed."""
    freed = 0
    for f in e.files:
        st = _regular(f)
        if st is None:
            continue
        try:
            f.unlink()
            freed += st.st_size
        except FileNotFoundError:
            pass
        except OSError:
            continue
    return freed


def clear(older_than_days: float | None = None, kinds: tuple[str, ...] | None = None) -> list[Entry]:
    """Remove entries (not used for ``older_than_days`` days, of ``kinds``); the removed ones."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86_400
    gone = []
    for e in entries(describe=False):
        if kinds and e.kind not in kinds:
            continue
        if cutoff is not None and e.last_used >= cutoff:
            continue
        remove(e)
        gone.append(e)
    return gone


def touch(*files: Path) -> None:
    """Mark an entry used now (its files' mtime; a read-only cache is left as it is)."""
    now = time.time()
    for f in files:
        try:
            if _regular(f) is not None:
                os.utime(f, (now, now), follow_symlinks=False)
        except (OSError, NotImplementedError):
            pass


# -- the cap ----------------------------------------------------------------------------------
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """``"2GiB"``, ``"500M"``, ``"1.5g"``, ``"1048576"`` → bytes (K/M/G/T are powers of 1024);
    ``"off"``/``"none"`` → None (no cap). ConfigError otherwise."""
    t = str(text).strip().lower()
    if t in ("off", "none", "unlimited"):
        return None
    m = _SIZE_RE.match(t)
    if not m:
        raise ConfigError(f"cache size must be bytes or a size like 500M or 2GiB (or off); got {text!r}")
    unit = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB}[m.group(2).lower()]
    return int(float(m.group(1)) * unit)


def settings_path() -> Path:
    return paths.data_dir() / SETTINGS_FILE


def set_cap(size: int | None) -> None:
    """Store the cap setting (None: no cap)."""
    p = settings_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with locked(p):
            d = _read_json(p)
            d["max_bytes"] = size
            atomic_write(p, json.dumps(d, indent=1))
    except OSError as exc:
        raise ConfigError(f"cannot write {p}: {exc.strerror or exc} (set SEQTUI_DATA_DIR to a writable place)") from None


def cap() -> tuple[int | None, str]:
    """(the cap in bytes or None, where it comes from: env | setting | default)."""
    env = os.environ.get(ENV_CAP)
    if env:
        try:
            return parse_size(env), "env"
        except ConfigError:
            raise ConfigError(f"{ENV_CAP} must be bytes or a size like 2GiB (or off); got {env!r}") from None
    d = _read_json(settings_path())
    if "max_bytes" in d:
        v = d["max_bytes"]
        if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            return v, "setting"
    return DEFAULT_CAP, "default"


def enforce_cap(keep=(), limit: int | None = None) -> list[Entry]:
    """Remove least recently used entries until the cache fits the cap; never an entry holding
    one of ``keep`` (the dataset being loaded). Returns what was removed; never raises for I/O."""
    try:
        limit = cap()[0] if limit is None else limit
    except ConfigError as exc:
        from seqtui.data.notices import notice

        notice(str(exc))
        return []
    if limit is None:
        return []
    keep_set = {os.path.abspath(k) for k in keep}
    try:
        all_entries = entries(describe=False)
    except OSError:
        return []
    total = sum(e.size for e in all_entries)
    gone = []
    for e in all_entries:  # least recently used first
        if total <= limit:
            break
        if any(os.path.abspath(f) in keep_set for f in e.files):
            continue
        total -= remove(e)
        gone.append(e)
    return gone
