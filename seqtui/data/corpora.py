"""Corpora by name: bundled ones (``corpora/*.toml`` manifests), user-registered ones, or any path.

Bundled corpora are extracted from installed packages once and kept as plain ``.txt`` files
under ``paths.cache_dir()/corpora`` so that every corpus is, in the end, a UTF-8 file.
User registrations live in ``paths.data_dir()/corpora.json``. Importing this module and listing
corpora never imports numba or numpy and never reads a corpus.

A corpus can also be many documents: a directory (every ``*.txt`` file under it, recursively,
hidden files and folders left out, symlinked folders not entered) or a glob pattern (``'lyrics/*.txt'``,
``**`` recurses; every regular file it matches). The documents are joined, in sorted order, into
one cached text file (``paths.cache_dir()/joined/<key>.txt``, key = the sha256 of the file list
with sizes and mtimes), each followed by :data:`DOCUMENT_SEPARATOR` on a line of its own (a
newline is added before it when a document does not end with one); the last is not followed by
it. Everything downstream (the token cache, BPE) sees that one file. A document containing
U+001E itself is refused. Entries that are not regular files (FIFOs, sockets, devices, broken
links, symlink loops) and empty files are skipped with a notice. A document that is not UTF-8 is
named with its position and refused (``errors="strict"``), decoded with U+FFFD (``"replace"``)
or left out with a notice (``"skip-file"``; for a single-file corpus ``skip-file`` is ``strict``).
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
DOCUMENT_SEPARATOR = "\x1e"      # U+001E RECORD SEPARATOR: ends every document of a joined corpus but the last
DOCUMENT_TEXT_SUFFIX = ".txt"     # what a directory corpus takes from its directory (recursively)
GLOB_CHARS = "*?["
_JOIN_FORMAT = 1


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
    # many documents: "dir" (path is the directory) or "glob" (path is the absolute pattern)
    members: str | None = None
    documents: int | None = None  # how many documents (files) a joined corpus has, once known
    joined: Path | None = None  # the joined text file, once built (corpus_file returns it)


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
    if entry.get("members") in ("dir", "glob"):
        return _members_info(name, path, entry["members"], kind="user", title=entry.get("title"),
                             strict=False)
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
    if os.path.isdir(p):
        return _members_info(p.name or str(p), p.resolve(), "dir")
    if not os.path.lexists(p) and any(c in key for c in GLOB_CHARS):
        return _members_info(key, Path(os.path.abspath(p)), "glob")
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


def corpus_file(info: CorpusInfo, errors: str | None = None) -> Path:
    """The corpus as a text file on disk (extracting a bundled corpus the first time, joining
    the documents of a directory or glob corpus; ``errors`` says what a joined corpus does with
    a document that is not UTF-8: strict (the default), replace or skip-file)."""
    if info.joined is not None:
        check_corpus_path(info.joined)
        return info.joined
    if info.members:
        return join_documents(info, errors or "strict")[0]
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


def add_corpus(name: str, path: str | os.PathLike, title: str | None = None, force: bool = False,
               errors: str = "strict") -> CorpusInfo:
    """Register a UTF-8 text file, a directory or a glob under ``name`` (checked, not copied: a
    directory's or glob's documents are joined once, which checks them under ``errors``)."""
    if not _NAME_RE.match(name):
        raise CorpusError(
            f"bad corpus name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)"
        )
    if name in {m["name"] for m in load_manifests()}:
        raise CorpusError(f"{name!r} is a bundled corpus; choose another name")
    p = Path(path).expanduser()
    entry: dict = {}
    if os.path.isdir(p) or (not os.path.lexists(p) and any(c in str(path) for c in GLOB_CHARS)):
        members = "dir" if os.path.isdir(p) else "glob"
        where = p.resolve() if members == "dir" else Path(os.path.abspath(p))
        info = _members_info(name, where, members, kind="user", title=title)
        documents = join_documents(info, errors)[1].get("documents")
        entry = {"path": str(where), "title": title or (where.name if members == "dir" else str(path)),
                 "members": members}
    elif not os.path.lexists(p):
        raise CorpusError(f"no such file: {path}")
    else:
        check_text_file(p, errors)
        entry = {"path": str(p.resolve()), "title": title or p.name}
    with _registry_update() as registry:
        if name in registry and not force:
            raise CorpusError(f"corpus {name!r} is already registered ({registry[name]['path']}); use --force to replace it")
        registry[name] = entry
    info = _user_info(name, registry[name])
    if info.members:
        from dataclasses import replace

        info = replace(info, documents=documents)
    return info


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
    """Raise CorpusError unless ``path`` is a non-empty UTF-8 text file; returns its size
    (``skip-file`` is ``strict`` for one file)."""
    errors = _one_file_errors(errors)
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
    path = corpus_file(info, errors)
    errors = _one_file_errors(errors)
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


def _one_file_errors(errors: str) -> str:
    """The decoder's mode for one file: ``skip-file`` (which leaves out a whole document of a
    directory corpus) is ``strict`` for a single file."""
    from seqtui.data.choices import ERRORS

    if errors not in ERRORS:
        raise CorpusError(f"errors must be one of {', '.join(map(repr, ERRORS))}, got {errors!r}")
    return "strict" if errors == "skip-file" else errors


# -- many documents: a directory or a glob ------------------------------------------------------
def _members_info(name: str, where: Path, members: str, kind: str = "path", title: str | None = None,
                  strict: bool = True) -> CorpusInfo:
    """A directory or glob corpus, its documents listed (not read). ``strict``: CorpusError when
    nothing matches (a registered one lists as unavailable instead)."""
    try:
        files, _ = list_documents(where, members)
        size = sum(st.st_size for _, st in files)
        problem = ""
    except CorpusError as exc:
        if strict:
            raise
        files, size, problem = [], None, str(exc)
    return CorpusInfo(
        name=name, title=title or name, kind=kind, path=where, source=str(where), size_bytes=size,
        available=not problem, install_hint=problem, members=members, documents=len(files) if not problem else None,
    )


def list_documents(where: Path, members: str) -> tuple[list[tuple[Path, os.stat_result]], list[str]]:
    """The documents of a directory (``*.txt`` recursively, no hidden entries, symlinked folders
    not entered) or a glob (every regular file it matches), sorted, with their stat; and the
    notices for the entries skipped (not a regular file, empty). CorpusError if there are none."""
    import glob as globlib

    skipped: list[str] = []
    if members == "dir":
        if not where.is_dir():
            raise CorpusError(f"corpus directory {where} does not exist")
        candidates = []

        def unreadable(exc: OSError) -> None:
            skipped.append(f"skipped {_shown(exc.filename)}: {exc.strerror or exc}")

        for root, dirs, names in os.walk(where, followlinks=False, onerror=unreadable):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in names:
                if not n.startswith(".") and n.lower().endswith(DOCUMENT_TEXT_SUFFIX):
                    candidates.append(Path(root) / n)
        candidates.sort(key=lambda c: c.relative_to(where).as_posix())
        empty_msg = f"corpus directory {where} has no {DOCUMENT_TEXT_SUFFIX} files"
    else:
        candidates = [Path(m) for m in sorted(globlib.glob(str(where), recursive=True))]  # by path string
        empty_msg = f"no files match {where}"
    files = []
    ours = os.path.realpath(paths.cache_dir()) + os.sep  # never a joined corpus of our own cache
    for c in candidates:
        if members == "glob" and os.path.isdir(c):
            continue  # a glob's directories are not documents
        if os.path.realpath(c).startswith(ours):
            continue
        try:
            st = regular_file(c, "document", MAX_TEXT_BYTES, CorpusError, allow_empty=True)
        except CorpusError as exc:
            skipped.append(f"skipped {_shown(exc)}")
            continue
        if st.st_size == 0:
            skipped.append(f"skipped empty document {_shown(c)}")
            continue
        files.append((c, st))
    if not files:
        detail = f" ({len(skipped)} skipped: {skipped[0]})" if skipped else ""
        raise CorpusError(empty_msg + detail)
    return files, skipped


def _shown(text: object) -> str:
    """File names in notices (printed by the data layer, not the CLI) with control characters
    made visible: a document's name is untrusted text."""
    s = str(text)
    return s if s.isprintable() else "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                                             else f"\\u{ord(c):04x}" for c in s)


def _joined_dir() -> Path:
    return paths.cache_dir() / "joined"


def joined_meta(path: Path) -> dict | None:
    """The metadata beside a joined corpus file (None if missing or unreadable)."""
    try:
        d = json.loads(read_text_bounded(path.with_suffix(".json"), "joined corpus index", 64 * MiB, CorpusError))
    except (CorpusError, ValueError):
        return None
    return d if isinstance(d, dict) and d.get("format") == _JOIN_FORMAT else None


def _document_error(path: Path, data: bytes, errors: str) -> CorpusError | None:
    """Why a document cannot be joined as it is (None: it can)."""
    nul = data.find(b"\x00")
    if nul >= 0:
        return binary_error(path, nul)
    if errors == "replace":
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(path, exc.start)
        return CorpusError(f"document {path}: invalid UTF-8 at byte {exc.start} (line {line}, column {col})")
    return None


_DOCUMENT_HINT = "; use --errors skip-file to leave it out or --errors replace to substitute U+FFFD"


def join_documents(info: CorpusInfo, errors: str = "strict") -> tuple[Path, dict]:
    """The joined text file of a directory or glob corpus and its metadata (built once, atomically)."""
    from seqtui.data.choices import ERRORS
    from seqtui.data.notices import notice

    if errors not in ERRORS:
        raise CorpusError(f"errors must be one of {', '.join(map(repr, ERRORS))}, got {errors!r}")
    assert info.path is not None and info.members
    files, skipped = list_documents(info.path, info.members)
    for message in skipped:
        notice(message)
    listing = [[str(f), st.st_size, st.st_mtime_ns] for f, st in files]
    mode = "skip" if errors == "skip-file" else "keep" if errors == "strict" else errors
    key = hashlib.sha256(json.dumps({"format": _JOIN_FORMAT, "mode": mode, "files": listing}).encode()).hexdigest()
    target = _joined_dir() / f"{key[:32]}.txt"
    meta = joined_meta(target) if target.is_file() else None
    if meta is None:
        target, meta = _write_joined(info, files, target, errors)
    else:
        from seqtui.data.cache import touch

        touch(target.with_suffix(".json"))  # not the .txt: its mtime keys the content-hash index
    for message in meta.get("notices", []):
        notice(message)
    return target, meta


def _write_joined(info: CorpusInfo, files, target: Path, errors: str) -> tuple[Path, dict]:
    from seqtui.data.notices import notice
    from seqtui.files import commit_temp, temp_path

    total = sum(st.st_size for _, st in files) + 2 * len(files)
    if total > MAX_CORPUS_BYTES:
        raise CorpusError(f"the documents of {info.path} add up to {total / GiB:,.1f} GiB, more than the "
                          f"{MAX_CORPUS_BYTES / GiB:,.0f} GiB limit")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(target)
        out = open(tmp, "wb")
    except OSError as exc:
        import tempfile

        fallback = Path(tempfile.gettempdir()) / f"seqtui-{os.getuid()}" / "joined" / target.name
        notice(f"cache directory {unwritable_dir(target.parent)} is not writable ({exc.strerror or exc}); "
               f"joining {info.path} in {fallback} for this process")
        fallback.parent.mkdir(parents=True, exist_ok=True)
        target = fallback
        tmp = temp_path(target)
        out = open(tmp, "wb")
    documents, notices = [], []
    sep = DOCUMENT_SEPARATOR.encode() + b"\n"
    try:
        with out:
            for f, _ in files:
                data = read_bounded(f, "document", MAX_TEXT_BYTES, CorpusError, allow_empty=True)
                if data.startswith(BOM):
                    data = data[len(BOM):]
                problem = _document_error(f, data, errors)
                if problem is not None:
                    if errors != "skip-file":
                        hint = _DOCUMENT_HINT if "UTF-8" in str(problem) else \
                            "; use --errors skip-file to leave it out"
                        raise CorpusError(f"{problem}{hint}") from None
                    notices.append(f"skipped {_shown(problem)}")
                    continue
                rs = data.find(sep[:1])
                if rs >= 0:
                    line, col = _line_col(f, rs)
                    raise CorpusError(f"document {f} contains U+001E (the document separator) at byte {rs} "
                                      f"(line {line}, column {col}); remove it")
                if not data:
                    continue
                if documents:
                    out.write(sep)
                out.write(data)
                if not data.endswith(b"\n"):
                    out.write(b"\n")
                documents.append(str(f))
        if not documents:
            raise CorpusError(f"every document of {info.path} was skipped ({notices[0] if notices else 'empty'})")
        commit_temp(tmp, target)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    for message in notices:
        notice(message)
    import time

    meta = {"format": _JOIN_FORMAT, "source": str(info.path), "members": info.members, "errors": errors,
            "documents": len(documents), "files": documents, "notices": notices, "created": time.time()}
    try:
        atomic_write(target.with_suffix(".json"), json.dumps(meta))
    except OSError:
        pass
    return target, meta
