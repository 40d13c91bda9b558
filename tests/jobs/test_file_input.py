"""The file-mode reader: exact line positions whatever bytes a file holds (no Flink: the transport alone)."""
from jobs.file_input import EventsError, line_text, prepare

import pytest


def transported(path):
    """What Flink's ISO-8859-1 line reader hands over: split at \\n only once the copy has no CR."""
    data = open(path, "rb").read().decode("latin-1")
    assert "\r" not in data
    lines = data.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read(tmp_path, data: bytes, directory=False):
    if directory:
        src = tmp_path / "in"
        src.mkdir(exist_ok=True)
        for i, chunk in enumerate(data):
            (src / f"{i:02d}.jsonl").write_bytes(chunk)
    else:
        src = tmp_path / "in.jsonl"
        src.write_bytes(data)
    prepared = prepare(src, tmp_path / "work", directory)
    return prepared, [line_text(t) for t in transported(prepared.path)]


def test_a_plain_file_is_read_as_it_is(tmp_path):
    prepared, lines = read(tmp_path, b'{"a":1}\n{"b":2}\n')
    assert prepared.path == str((tmp_path / "in.jsonl").resolve())
    assert lines == ['{"a":1}', '{"b":2}']


def test_crlf_bom_raw_cr_and_nul_keep_every_line_whole(tmp_path):
    data = b'\xef\xbb\xbf{"a":1}\r\n{"b":\r2}\r\nx\x00y\r\n{"c":"\xc3\xa9"}\r\nlast'
    prepared, lines = read(tmp_path, data)
    assert prepared.path != str(tmp_path / "in.jsonl")
    assert lines == ['{"a":1}', '{"b":\r2}', "x\x00y", '{"c":"é"}'.encode(), "last"]


def test_bytes_that_are_not_utf8_reach_the_gate_as_bytes(tmp_path):
    _, lines = read(tmp_path, b'{"k":"\xff\xfe"}\n')
    assert lines == [b'{"k":"\xff\xfe"}']


def test_a_directory_gives_partition_and_offset_per_file(tmp_path):
    prepared, lines = read(tmp_path, [b"a1\na2\n", b"b1", b"", b"c1\nc2\nc3\n"], directory=True)
    assert lines == ["a1", "a2", "b1", "c1", "c2", "c3"]
    assert [prepared.position(n) for n in range(1, 7)] == [(0, 1), (0, 2), (1, 1), (3, 1), (3, 2), (3, 3)]


def test_a_directory_needs_the_flag(tmp_path):
    with pytest.raises(EventsError, match="--events-directory"):
        prepare(tmp_path, tmp_path / "work")
