"""Tag files of the anime layouts: the published row formats are read, malformed rows are one-line errors naming
their line (or, leniently, listed), empty tags come back empty for the converter to count."""

from __future__ import annotations

import pytest

from t2i_tf.datasets.anime.tags import (
    COUNTED,
    PLAIN,
    colour_tags,
    normalise,
    read_tag_file,
    read_tag_file_lenient,
)
from t2i_tf.errors import UserError


def write(tmp_path, text: str | bytes, name: str = "tags.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def test_deep_t2i_rows_with_stems_or_file_names(tmp_path):
    tf = read_tag_file(write(tmp_path, "0,aqua hair aqua eyes\n1.jpg,Blue_Hair  red eyes\r\n\n2.png,\n"))
    assert tf.format == PLAIN and tf.header is None
    assert [(r.image, r.caption, r.line) for r in tf.rows] == [
        ("0", "aqua hair aqua eyes", 1), ("1.jpg", "blue hair red eyes", 2), ("2.png", "", 4)]


def test_header_quoted_commas_and_comma_separated_tags(tmp_path):
    text = "\ufeffid,tags\n0.jpg,\"blue hair, red eyes\"\n1.jpg,green hair,yellow eyes\n"
    tf = read_tag_file(write(tmp_path, text))
    assert tf.header == ["id", "tags"]
    assert [r.caption for r in tf.rows] == ["blue hair, red eyes", "green hair yellow eyes"]


def test_mlds2017_counted_rows_and_the_colour_filter(tmp_path):
    text = "0,long hair:12360\tblue eyes:8540\tpink hair:3\t\n1,touhou:5\tshort hair:1\n"
    path = write(tmp_path, text, "tags_clean.csv")
    tf = read_tag_file(path)
    assert tf.format == COUNTED
    assert [r.caption for r in tf.rows] == ["long hair blue eyes pink hair", "touhou short hair"]
    colours = read_tag_file(path, tag_filter="colours")
    assert [r.caption for r in colours.rows] == ["blue eyes pink hair", ""]  # 'long' is no colour; row 1 has none


def test_normalise_and_colour_tags():
    assert normalise("  Blonde_Hair\tGREEN   eyes ") == "blonde hair green eyes"
    assert colour_tags("long hair blonde hair smile green eyes heterochromia eyes") == "blonde hair green eyes"


@pytest.mark.parametrize("text, message", [
    ("0,blue hair red eyes\n1 blue hair\n", "line 2: expected '<image>,<tags>'"),
    ("0,blue hair\n,red hair\n", "line 2: empty image name"),
    ("../etc/passwd,blue hair\n", "line 1: image name '../etc/passwd' must be a file name"),
    ("0,blue hair\n0.jpg,red hair\n", "line 2: image '0.jpg' already has a row (line 1)"),
    ("0,blue hair:12\tred eyes:x\n", "line 1: tag item 'red eyes:x' is not '<tag>:<count>'"),
    ("id,tags\n", "has no readable rows"),
])
def test_malformed_rows_are_errors_naming_the_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")) as e:
        read_tag_file(path)
    assert str(e.value).startswith(path)


def test_counted_format_is_kept_for_the_whole_file(tmp_path):
    with pytest.raises(UserError, match="line 2: tag item 'blue hair red eyes'"):
        read_tag_file(write(tmp_path, "0,blue hair:1\tred eyes:2\n1,blue hair red eyes\n"))
    rows = read_tag_file(write(tmp_path, "0,blue hair:1\n1,red eyes:2\n"), fmt=PLAIN).rows
    assert [r.caption for r in rows] == ["blue hair:1", "red eyes:2"]  # told plain: read as plain text


def test_not_utf8_names_the_line(tmp_path):
    with pytest.raises(UserError, match="line 2: not UTF-8 text"):
        read_tag_file(write(tmp_path, b"0,blue hair\n1,caf\xe9 hair\n"))


def test_lenient_reading_lists_the_bad_rows(tmp_path):
    tf, bad = read_tag_file_lenient(write(tmp_path, "0,blue hair\nno comma here\n0,red hair\n2,red hair\n"))
    assert [r.image for r in tf.rows] == ["0", "2"]
    assert [line for line, _ in bad] == [2, 3]
    assert "no comma" in bad[0][1] and "already has a row" in bad[1][1]


def test_bad_options(tmp_path):
    path = write(tmp_path, "0,blue hair\n")
    with pytest.raises(UserError, match="--tags_format must be one of auto, plain, counted"):
        read_tag_file(path, fmt="csv")
    with pytest.raises(UserError, match="--tag_filter must be one of all, colours"):
        read_tag_file(path, tag_filter="hair")
    with pytest.raises(UserError, match="not found"):
        read_tag_file(str(tmp_path / "nope.csv"))
