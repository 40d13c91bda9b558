"""File mode's reader: each `\\n`-terminated line is one record at its exact position. Pure logic, no Flink.

Flink's text line format reads with Java's `readLine`, which also ends a line at a carriage return
(so a raw CR inside a line, valid JSON whitespace, would split it and shift every later position)
and decodes with one charset (so bytes that are not UTF-8 become U+FFFD, which is then
indistinguishable from a real U+FFFD). So the job reads the file as ISO-8859-1, where every byte is
one character and nothing is lost, and decodes UTF-8 itself, strictly, in the gate. A file that
holds a CR or NUL byte, or starts with a UTF-8 byte order mark, is first copied with the mark
dropped, NUL written as NUL NUL and CR as NUL "r"; a file with none of them is read as it is.

A directory of files is read only when asked (`--events-directory`): its regular files in name
order, concatenated through the same copy; a record's position is then (partition = the file's
index in that order, offset = its line number in its file).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

CHARSET = "ISO-8859-1"
BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20
_UNESCAPE = re.compile("\x00(.)", re.DOTALL)


class EventsError(ValueError):
    """The events path cannot be read as asked (a one-line message for the command line)."""


@dataclass(frozen=True)
class PreparedEvents:
    """What Flink reads (`path`), and where each input file's lines start in it."""

    path: str
    files: tuple[str, ...]
    first_lines: tuple[int, ...]  # global line number (from 1) of each file's first line

    def position(self, line_no: int) -> tuple[int, int]:
        """(partition, offset) of global line `line_no`: the file's index and the line number in it."""
        i = bisect.bisect_right(self.first_lines, line_no) - 1
        return i, line_no - self.first_lines[i] + 1


def input_files(events: Path, directory: bool) -> list[Path]:
    if not events.exists():
        raise EventsError(f"--events {events}: no such file")
    if events.is_dir():
        if not directory:
            raise EventsError(f"--events {events} is a directory; pass --events-directory to read every file in it")
        files = sorted(p for p in events.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise EventsError(f"--events {events}: the directory holds no files")
        return files
    if not events.is_file():
        raise EventsError(f"--events {events}: not a regular file")
    return [events]


def _needs_copy(path: Path) -> bool:
    with open(path, "rb") as f:
        first = True
        while chunk := f.read(_CHUNK):
            if (first and chunk.startswith(BOM)) or b"\r" in chunk or b"\x00" in chunk:
                return True
            first = False
    return False


def prepare(events: Path, work_dir: Path, directory: bool = False) -> PreparedEvents:
    """The file Flink reads for `events` (the file itself when it needs no copy) and its line map."""
    files = input_files(events, directory)
    if len(files) == 1 and not _needs_copy(files[0]):
        return PreparedEvents(str(files[0].resolve()), (str(files[0]),), (1,))
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "events.latin1"
    first_lines: list[int] = []
    line = 1
    with open(target, "wb") as out:
        for path in files:
            first_lines.append(line)
            with open(path, "rb") as f:
                first, last = True, b"\n"
                while chunk := f.read(_CHUNK):
                    if first and chunk.startswith(BOM):
                        chunk = chunk[len(BOM):]
                    first = False
                    if chunk:
                        last = chunk[-1:]
                    line += chunk.count(b"\n")
                    out.write(chunk.replace(b"\x00", b"\x00\x00").replace(b"\r", b"\x00r"))
                if last != b"\n":  # a last line without its newline is still a line
                    out.write(b"\n")
                    line += 1
    return PreparedEvents(str(target.resolve()), tuple(str(p) for p in files), tuple(first_lines))


def line_text(transported: str) -> str | bytes:
    """The record of one line as Flink hands it over (ISO-8859-1): its text when it is ASCII, else its
    bytes (the gate decodes them as UTF-8, strictly). One line-ending CR (of a CRLF file) is dropped."""
    if "\x00" in transported:
        transported = _UNESCAPE.sub(lambda m: "\r" if m.group(1) == "r" else m.group(1), transported)
    if transported.endswith("\r"):
        transported = transported[:-1]
    return transported if transported.isascii() else transported.encode("latin-1")
