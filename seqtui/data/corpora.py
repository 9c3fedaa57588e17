"""Corpora by name: bundled ones (``corpora/*.toml`` manifests), user-registered ones, or any path.

Bundled corpora are extracted from installed packages once and kept as plain ``.txt`` files
under ``paths.cache_dir()/corpora`` so that every corpus is, in the end, a UTF-8 file.
User registrations live in ``paths.data_dir()/corpora.json``. Importing this module and listing
corpora never imports numba or numpy and never reads a corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from seqtui import paths
from seqtui.errors import CorpusError
from seqtui.files import GiB, MiB, atomic_write, locked, read_bounded, read_text_bounded, regular_file, unwritable_dir

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

KINDS = ("bundled", "user", "path")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REGISTRY_VERSION = 1
_READ_CHUNK = 1 << 24
MAX_CORPUS_BYTES = 64 * GiB      # a corpus file (tokenized through a memory map, chunk by chunk)
MAX_TEXT_BYTES = 2 * GiB         # text read whole into memory (eval --corpus)
MAX_MANIFEST_BYTES = 1 * MiB
MAX_REGISTRY_BYTES = 16 * MiB
BOM = b"\xef\xbb\xbf"             # a UTF-8 byte-order mark: stripped, never a vocabulary character


def check_corpus_path(path: str | os.PathLike, what: str = "corpus file") -> os.stat_result:
    """CorpusError unless ``path`` is a non-empty regular file within MAX_CORPUS_BYTES (a device,
    FIFO, /proc file, directory, symlink loop or broken link gets a true one-line message)."""
    return regular_file(path, what, MAX_CORPUS_BYTES, CorpusError)


@dataclass(frozen=True)
class CorpusInfo:
    """What is known about a corpus without reading it."""

    name: str
    title: str
    kind: str  # "bundled" | "user" | "path"
    path: Path | None  # the text file; for a bundled corpus None until it is materialized
    licence: str = ""
    source: str = ""
    description: str = ""
    size_bytes: int | None = None  # file size, or the manifest's estimate before materializing
    available: bool = True  # False: a bundled corpus whose package is not installed
    install_hint: str = ""
    manifest: dict | None = field(default=None, compare=False, repr=False)


# -- manifests --------------------------------------------------------------------------------
def manifest_dir() -> Path:
    """``seqtui/_corpora`` in a wheel install; the repository's ``corpora/`` in editable mode."""
    here = Path(__file__).resolve().parent.parent  # the seqtui package
    for candidate in (here / "_corpora", here.parent / "corpora"):
        if candidate.is_dir():
            return candidate
    raise CorpusError(f"bundled corpus manifests not found (looked in {here / '_corpora'})")


def load_manifests() -> list[dict]:
    """Every bundled manifest, sorted by name; each gets ``_file`` and ``_sha256``."""
    out = []
    for f in sorted(manifest_dir().glob("*.toml")):
        raw = read_bounded(f, "corpus manifest", MAX_MANIFEST_BYTES, CorpusError)
        try:
            m = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CorpusError(f"bad corpus manifest {f.name}: {exc}") from None
        for key in ("name", "title", "source", "licence", "extract"):
            if key not in m:
                raise CorpusError(f"corpus manifest {f.name} lacks '{key}'")
        m["_file"] = str(f)
        m["_sha256"] = hashlib.sha256(raw).hexdigest()
        out.append(m)
    return sorted(out, key=lambda m: m["name"])


def _materialized_path(m: dict) -> Path:
    from seqtui.data.extractors import extraction_key

    key = hashlib.sha256(
        (m["_sha256"] + "|" + extraction_key(m["extract"]["method"], m.get("requires"))).encode()
    ).hexdigest()[:16]
    return paths.cache_dir() / "corpora" / f"{m['name']}-{key}.txt"


def _bundled_info(m: dict) -> CorpusInfo:
    from seqtui.data.extractors import distribution_version

    requires = m.get("requires")
    available = requires is None or distribution_version(requires) is not None
    target = _materialized_path(m) if available else None
    exists = target is not None and target.is_file()
    return CorpusInfo(
        name=m["name"],
        title=m["title"],
        kind="bundled",
        path=target if exists else None,
        licence=m["licence"],
        source=m["source"],
        description=m.get("description", ""),
        size_bytes=target.stat().st_size if exists else m.get("approx_bytes"),
        available=available,
        install_hint=m.get("install_hint", ""),
        manifest=m,
    )


# -- user registry ----------------------------------------------------------------------------
def registry_path() -> Path:
    return paths.data_dir() / "corpora.json"


def _load_registry() -> dict[str, dict]:
    p = registry_path()
    if not os.path.lexists(p):
        return {}
    text = read_text_bounded(p, "corpus registry", MAX_REGISTRY_BYTES, CorpusError)
    try:
        d = json.loads(text)
        corpora = d["corpora"]
        if not isinstance(corpora, dict):
            raise TypeError
        return corpora
    except (ValueError, KeyError, TypeError):
        raise CorpusError(f"corpus registry {p} is corrupt; fix or delete it") from None


def _save_registry(corpora: dict[str, dict]) -> None:
    p = registry_path()
    try:
        atomic_write(p, json.dumps({"version": _REGISTRY_VERSION, "corpora": corpora}, indent=2))
    except OSError as exc:
        raise _registry_write_error(p, exc) from None


def _registry_write_error(p: Path, exc: OSError) -> CorpusError:
    where = unwritable_dir(p.parent)
    kind = "directory" if where.is_dir() else "a file, not a directory" if where.exists() else "missing"
    detail = f"{where} is read-only" if where.is_dir() and not os.access(where, os.W_OK) else \
        f"{where} ({kind}): {exc.strerror or exc}"
    return CorpusError(f"cannot update the corpus registry {p}: {detail} (set SEQTUI_DATA_DIR to a writable place)")


class _registry_update:
    """``with _registry_update() as registry:`` — the registry, re-read under an exclusive lock
    beside it and saved on a clean exit, so concurrent ``corpora add`` lose nothing."""

    def __enter__(self) -> dict[str, dict]:
        p = registry_path()
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._lock = locked(p)
            self._lock.__enter__()
        except OSError as exc:
            raise _registry_write_error(p, exc) from None
        try:
            self.registry = _load_registry()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self.registry

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                _save_registry(self.registry)
        finally:
            self._lock.__exit__(None, None, None)


def _user_info(name: str, entry: dict) -> CorpusInfo:
    path = Path(entry["path"])
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    return CorpusInfo(
        name=name,
        title=entry.get("title") or path.name,
        kind="user",
        path=path,
        source=str(path),
        description=entry.get("description", ""),
        size_bytes=size,
        available=size is not None,
        install_hint="" if size is not None else f"file missing; `seqtui corpora remove {name}`",
    )


# -- public API -------------------------------------------------------------------------------
def list_corpora() -> list[CorpusInfo]:
    """Bundled corpora (available or not), then user-registered ones, each group by name."""
    infos = [_bundled_info(m) for m in load_manifests()]
    infos += [_user_info(n, e) for n, e in sorted(_load_registry().items())]
    return infos


def known_names() -> list[str]:
    return [i.name for i in list_corpora()]


def resolve_corpus(name_or_path: str) -> CorpusInfo:
    """A bundled or registered name, else a path to a text file; CorpusError otherwise."""
    key = str(name_or_path).strip()
    if not key:
        raise CorpusError("no corpus given; name one (seqtui corpora list) or give a file path")
    for m in load_manifests():
        if m["name"] == key:
            return _bundled_info(m)
    registry = _load_registry()
    if key in registry:
        return _user_info(key, registry[key])
    p = Path(key).expanduser()
    if os.path.lexists(p):  # a broken link or a symlink loop is a path too, not an unknown name
        st = check_corpus_path(p)
        return CorpusInfo(
            name=p.name, title=p.name, kind="path", path=p.resolve(), source=str(p.resolve()),
            size_bytes=st.st_size,
        )
    if os.sep in key or "/" in key or key.startswith((".", "~")) or p.suffix:
        raise CorpusError(f"no such file: {key}")
    known = ", ".join(known_names())
    raise CorpusError(f"unknown corpus {key!r}; known: {known} (or give a path to a UTF-8 text file)")


def corpus_file(info: CorpusInfo) -> Path:
    """The corpus as a text file on disk (extracting a bundled corpus the first time)."""
    if info.kind == "bundled":
        if not info.available:
            raise CorpusError(f"corpus {info.name!r} is not installed: {info.install_hint}")
        return materialize(info.manifest or _manifest(info.name))
    assert info.path is not None
    p = info.path
    if not os.path.lexists(p):
        hint = f"; remove it with `seqtui corpora remove {info.name}`" if info.kind == "user" else ""
        raise CorpusError(f"corpus file {p} does not exist{hint}")
    check_corpus_path(p)
    return p


def _manifest(name: str) -> dict:
    for m in load_manifests():
        if m["name"] == name:
            return m
    raise CorpusError(f"no bundled corpus {name!r}")


def materialize(m: dict) -> Path:
    """Extract a bundled corpus into the cache (atomically) unless it is already there."""
    from seqtui.data.extractors import EXTRACTORS

    target = _materialized_path(m)
    if target.is_file():
        return target
    fallback = _memory_fallback(m)
    if fallback.is_file():
        return fallback
    method = m["extract"]["method"]
    if method not in EXTRACTORS:
        raise CorpusError(f"corpus {m['name']!r}: unknown extraction method {method!r}")
    text = EXTRACTORS[method](m["extract"])
    if not text or "\x00" in text:
        raise CorpusError(f"corpus {m['name']!r}: extraction produced no usable text")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, text)
    except OSError as exc:  # a read-only cache: keep the text in a private temp file instead
        from seqtui.data.notices import notice

        notice(f"cache directory {unwritable_dir(target.parent)} is not writable "
               f"({exc.strerror or exc}); extracting {m['name']!r} to {fallback} for this process")
        fallback.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(fallback, text)
        return fallback
    for old in target.parent.glob(f"{m['name']}-*.txt"):  # earlier versions of this corpus
        if old != target and old.name.rsplit("-", 1)[0] == m["name"]:
            old.unlink(missing_ok=True)
    return target


def _memory_fallback(m: dict) -> Path:
    import tempfile

    return Path(tempfile.gettempdir()) / f"seqtui-{os.getuid()}" / _materialized_path(m).name


def add_corpus(name: str, path: str | os.PathLike, title: str | None = None, force: bool = False) -> CorpusInfo:
    """Register a UTF-8 text file under ``name`` (the file is checked, not copied)."""
    if not _NAME_RE.match(name):
        raise CorpusError(
            f"bad corpus name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)"
        )
    if name in {m["name"] for m in load_manifests()}:
        raise CorpusError(f"{name!r} is a bundled corpus; choose another name")
    p = Path(path).expanduser()
    if not os.path.lexists(p):
        raise CorpusError(f"no such file: {path}")
    check_text_file(p)
    with _registry_update() as registry:
        if name in registry and not force:
            raise CorpusError(f"corpus {name!r} is already registered ({registry[name]['path']}); use --force to replace it")
        registry[name] = {"path": str(p.resolve()), "title": title or p.name}
    return _user_info(name, registry[name])


def remove_corpus(name: str) -> CorpusInfo:
    """Forget a registered corpus (its file is left alone)."""
    with _registry_update() as registry:
        if name not in registry:
            if name in {m["name"] for m in load_manifests()}:
                raise CorpusError(f"{name!r} is a bundled corpus and cannot be removed")
            users = ", ".join(sorted(registry)) or "none"
            raise CorpusError(f"no registered corpus {name!r} (registered: {users})")
        info = _user_info(name, registry.pop(name))
    return info


# -- validation and reading ---------------------------------------------------------------------
def _line_col(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of a byte offset, reading the file in chunks."""
    line, last_nl, done = 1, -1, 0
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(_READ_CHUNK, offset - done))
            if not chunk:
                break
            line += chunk.count(b"\n")
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                last_nl = done + nl
            done += len(chunk)
    return line, offset - last_nl


def bad_utf8_error(path: Path, offset: int) -> CorpusError:
    line, col = _line_col(path, offset)
    return CorpusError(
        f"{path}: invalid UTF-8 at byte {offset} (line {line}, column {col}); "
        "use --errors replace to substitute U+FFFD"
    )


def binary_error(path: Path, offset: int) -> CorpusError:
    if looks_utf16(path):
        return CorpusError(f"{path} is UTF-16, not UTF-8; convert it: iconv -f UTF-16 -t UTF-8 "
                           f"{path} > {Path(path).stem}-utf8.txt")
    return CorpusError(f"{path} looks binary (NUL byte at offset {offset}); give a UTF-8 text file")


def looks_utf16(path: Path, sniff: int = 4096) -> bool:
    """A UTF-16 byte-order mark, or (mostly ASCII UTF-16) a NUL in every other byte."""
    try:
        with open(path, "rb") as f:
            head = f.read(sniff)
    except OSError:
        return False
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    if len(head) < 4:
        return False
    head = head[: len(head) // 2 * 2]
    evens, odds = head[0::2], head[1::2]
    for zeros, other in ((evens, odds), (odds, evens)):
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.1 * len(other):
            return True
    return False


def empty_error(path: Path) -> CorpusError:
    return CorpusError(f"{path} is empty")


def check_text_file(path: Path, errors: str = "strict") -> int:
    """Raise CorpusError unless ``path`` is a non-empty UTF-8 text file; returns its size."""
    if errors not in ("strict", "replace"):
        raise CorpusError(f"errors must be 'strict' or 'replace', got {errors!r}")
    size = check_corpus_path(path).st_size
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors)
    done = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_READ_CHUNK)
            final = not chunk
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise binary_error(path, done + nul)
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                # exc.start counts from the bytes the decoder still buffered before this chunk.
                pending = len(exc.object) - len(chunk)
                raise bad_utf8_error(path, done - pending + exc.start) from None
            if final:
                return size
            done += len(chunk)


def read_corpus_text(info: CorpusInfo, errors: str = "strict", max_bytes: int | None = None) -> str:
    """The validated text of a corpus (or of its first ``max_bytes``, cut at a character)."""
    if errors not in ("strict", "replace"):
        raise CorpusError(f"errors must be 'strict' or 'replace', got {errors!r}")
    path = corpus_file(info)
    size = regular_file(path, "corpus file", None if max_bytes else MAX_TEXT_BYTES, CorpusError).st_size
    limit = min(max_bytes or size, MAX_TEXT_BYTES)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if max_bytes is None and len(data) > limit:
        raise CorpusError(f"corpus file {path} grew past the {MAX_TEXT_BYTES / MiB:,.0f} MiB limit while being read")
    data = data[:limit]
    if not data:
        raise empty_error(path)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise binary_error(path, nul)
    import codecs

    # When cut short, an incomplete trailing character is dropped (final=False), not an error.
    final = max_bytes is None or len(data) < max_bytes
    try:
        text = codecs.getincrementaldecoder("utf-8")(errors).decode(data, final)
        return text[1:] if data.startswith(BOM) else text
    except UnicodeDecodeError as exc:
        raise bad_utf8_error(path, exc.start) from None
