"""t2i_tf.files: atomic small-file writes."""

import os
import threading

import pytest

from t2i_tf.files import write_text_atomic


def test_writes_replaces_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "vocab.txt"
    assert write_text_atomic(path, "a\nb\n") == str(path)
    write_text_atomic(path, "c\n")
    assert path.read_text() == "c\n"
    assert os.listdir(path.parent) == ["vocab.txt"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError):
        write_text_atomic(path, b"not text")  # fails inside the write, after the temporary file exists
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["config.json"]


def test_concurrent_writers_never_leave_a_partial_file(tmp_path):
    path = tmp_path / "vocab.txt"
    texts = [str(i) * 200_000 for i in range(8)]
    errors = []

    def write(text):
        try:
            for _ in range(5):
                write_text_atomic(path, text)
        except Exception as e:  # a shared temporary name makes a writer's rename fail
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_text() in texts
    assert os.listdir(tmp_path) == ["vocab.txt"]
