"""Files, handled so that no file can hang, exhaust or harm the machine.

- Reading: :func:`open_regular` opens regular files only (a FIFO would block forever, ``/dev/zero`` never
  ends), checked again on the open descriptor; readers compare the sizes a file declares with its real
  size, and :func:`check_memory` compares what an allocation needs with the memory left, before any work.
- Writing: :func:`atomic_write` writes a temporary file next to the target, fsyncs it and renames it over
  the target, so that the target is never half written; a special file (FIFO, device) is written
  directly and a symbolic link is followed, never replaced by the rename. :func:`clean_stale_tmp`
  removes the temporary files a killed process left.
- Names that come from files (class names, column names) reach a terminal through :func:`safe_text`
  (control characters escaped) and a CSV file through :func:`csv_cell` (no spreadsheet formula).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path

__all__ = [
    "open_regular",
    "check_regular",
    "atomic_write",
    "clean_stale_tmp",
    "check_memory",
    "memory_available",
    "free_space",
    "fmt_bytes",
    "safe_text",
    "safe_lines",
    "csv_cell",
    "short",
    "shown",
    "TMP_PATTERN",
]

# The temporary names atomic_write uses: ".<name>.<12 hex digits>.tmp" next to the target.
TMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")

_KINDS = [
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
]


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def fmt_bytes(n: float) -> str:
    """1536 → '1.5 KB' (powers of 1000, as disks and `df -H` count)."""
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def check_regular(path, what: str, error, hint: str = "") -> Path:
    """``path`` as a Path when it names a regular file (symbolic links followed); otherwise ``error``
    (an exception class taking message and hint) saying it is missing, a directory, or a FIFO/device."""
    path = Path(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"no such {what}: {shown(path)}", hint or "check the path") from None
    except OSError as exc:
        raise error(
            f"cannot read the {what} {shown(path)}: {exc.strerror or exc}",
            "check the path and its permissions",
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{shown(path)} is a directory, not a {what}", hint or "pass the path of a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(
            f"{shown(path)} is {_kind(st.st_mode)}, not a regular file",
            f"pass a {what} saved on disk; deltaprop reads no pipes or devices (they can block or never end)",
        )
    return path


def open_regular(path, what: str, error, hint: str = ""):
    """A binary file object for the regular file ``path`` (see :func:`check_regular`), opened without
    blocking and checked again on the descriptor: a path swapped for a FIFO in between is refused too."""
    path = check_regular(path, what, error, hint)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(
            f"cannot read the {what} {shown(path)}: {exc.strerror or exc}",
            "check the path and its permissions",
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise error(
            f"{shown(path)} is {_kind(st.st_mode)}, not a regular file", f"pass a {what} saved on disk"
        )
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# -- memory and disk ------------------------------------------------------------------------------
def memory_available() -> int | None:
    """Bytes this process can still allocate: the kernel's MemAvailable, lowered by an address-space
    limit (``ulimit -v``) when one is set; None where neither can be read."""
    budget = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    budget = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmSize:"):
                        used = int(line.split()[1]) * 1024
                        break
            left = max(0, soft - used)
            budget = left if budget is None else min(budget, left)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return budget


def check_memory(nbytes: int, what: str, hint: str, error) -> None:
    """Refuse (``error``) an allocation of ``nbytes`` for ``what`` that does not fit in the memory left,
    before trying it: both figures in a clear message instead of a machine that swaps or a killed process."""
    budget = memory_available()
    if budget is not None and nbytes > budget:
        raise error(
            f"{what} needs {fmt_bytes(nbytes)} of memory, but only {fmt_bytes(budget)} is available", hint
        )


def free_space(directory) -> int | None:
    """Bytes free for an unprivileged writer in ``directory`` (None where it cannot be read)."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


# -- writing --------------------------------------------------------------------------------------
def atomic_write(path, chunks) -> None:
    """Write the byte strings ``chunks`` to ``path`` so that ``path`` is never half written: into a
    temporary file in the same directory, flushed and fsynced, then renamed over ``path``. A failure
    (raised as OSError) leaves any existing ``path`` untouched and no temporary file behind.

    A symbolic link is followed (the file it names is replaced, the link stays); a FIFO or a device
    (``-o /dev/stdout``, a named pipe) is written directly, never renamed over; a FIFO nobody reads
    is refused at once instead of blocking."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = [chunks]
    path = Path(os.fspath(path))
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a directory; name a file inside it", str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_special(path, st, chunks)
        return
    directory = path.parent
    tmp = None
    try:
        # A name in the target's own directory, so that os.replace is a rename, never a copy.
        for _ in range(100):
            tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
            except OSError as exc:  # name the directory the user chose, not the temporary file
                raise OSError(exc.errno, exc.strerror, str(directory)) from None
        else:  # pragma: no cover - 100 collisions of 48 random bits
            raise FileExistsError(f"no free temporary name in {directory}")
        with os.fdopen(fd, "wb") as f:
            try:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(path)) from None
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(directory)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_special(path: Path, st, chunks) -> None:
    flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
    if stat.S_ISFIFO(st.st_mode):
        flags |= getattr(os, "O_NONBLOCK", 0)  # ENXIO at once when no process reads the pipe
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "no process is reading this FIFO", str(path)) from None
        raise
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible everywhere (Windows), so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_stale_tmp(directory) -> list[str]:
    """Remove the temporary files (``.NAME.<hex>.tmp``) a writer killed mid-write left in ``directory``;
    call it only while no other process writes there (the run lock). Returns the names removed."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if TMP_PATTERN.match(name):
            try:
                if stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode):
                    os.unlink(os.path.join(directory, name))
                    removed.append(name)
            except OSError:
                pass
    return removed


# -- names from files -----------------------------------------------------------------------------
def safe_text(text) -> str:
    """``text`` with every control and format character (escape sequences, bidirectional overrides)
    written as a visible escape such as ``\\x1b``: a name from a file cannot drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) in ("Zs",):
            out.append(" ")
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def safe_lines(text) -> str:
    """:func:`safe_text` line by line: newlines and tabs kept."""
    return "\n".join(
        "\t".join(safe_text(part) for part in line.split("\t")) for line in str(text).split("\n")
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def csv_cell(text) -> str:
    """A name for a CSV cell that no spreadsheet runs as a formula: text starting with = + - @ (or a
    tab, CR, | or %) gets a leading apostrophe, unless it is a plain number such as -1 or +2.5; control
    characters are escaped as by :func:`safe_text` (the CSV may go to a terminal)."""
    text = safe_text(text)
    if text.startswith(_FORMULA_START):
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


def shown(path) -> str:
    """A path as it may appear in a message: control characters escaped, at most 200 characters."""
    text = safe_text(os.fspath(path) if isinstance(path, os.PathLike) else str(path))
    return text if len(text) <= 200 else text[:197] + "..."


def short(value, limit: int = 60) -> str:
    """repr of ``value`` (safe for the terminal) cut to ``limit`` characters: a crafted file cannot
    make a message megabytes long."""
    text = safe_text(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
