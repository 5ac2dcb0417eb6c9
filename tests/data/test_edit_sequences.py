"""CSS edit sequences: the episode builder (turns, scenes and instructions agree), the records and their reader."""

import numpy as np
import pytest

from t2i_tf.data import edit_sequences as es
from t2i_tf.data.css_cells import decode_object, scene_cells
from t2i_tf.data.css_scene import CELL_NAMES, HELD_OUT_COMBOS, render_scene
from t2i_tf.datasets.css.edits import main as edits_main, write_edit_sequences
from t2i_tf.errors import UserError


def test_every_turn_is_the_one_edit_its_instruction_names():
    rng = np.random.default_rng(0)
    lengths, kinds, empty_starts = set(), set(), 0
    for _ in range(200):
        seq = es.random_sequence(rng, es.combos_of("train"))
        assert es.MIN_TURNS <= seq.num_turns <= es.MAX_TURNS
        assert len(seq.scenes) == seq.num_turns + 1 == len(seq.instructions) + 1
        lengths.add(seq.num_turns)
        empty_starts += all(o is None for o in seq.scenes[0])
        cells = seq.cells()
        for t, (kind, cell, new) in enumerate(seq.edits):
            before, after, text = cells[t], cells[t + 1], seq.instructions[t]
            changed = np.flatnonzero(before != after)
            assert changed.tolist() == [cell], (before, after, text)
            assert CELL_NAMES[cell] in text and text.startswith(kind)
            kinds.add(kind)
            if kind == "add":
                assert before[cell] == 0 and decode_object(after[cell]) == new
                assert " ".join(new) in text
            else:
                assert before[cell] > 0 and after[cell] == 0
            for code in after[after > 0]:
                assert decode_object(code)[1:] not in HELD_OUT_COMBOS  # train episodes keep the held-out combos out
    assert lengths == {3, 4, 5} and kinds == {"add", "remove"}
    assert 60 < empty_starts < 140  # about half start from an empty canvas


def test_test_split_episodes_use_the_held_out_combinations():
    rng = np.random.default_rng(1)
    seen = {decode_object(c)[1:] for _ in range(300) for c in es.random_sequence(rng, es.combos_of("test")).cells().ravel()
            if c > 0}
    assert set(HELD_OUT_COMBOS) <= seen


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("edits"))
    return out, write_edit_sequences(out, seed=2, num_train=12, num_test=5, image_size=16)


def test_records_read_back_padded_with_their_scenes(records):
    out, info = records
    assert info["splits"]["test"]["num_sequences"] == 5 and info["instruction_words"]
    batches = list(es.held_out_sequences(out, "test", 16, 4, 3))
    assert [int(b["num_turns"].shape[0]) for b in batches] == [3, 1]
    b = batches[0]
    assert b["images"].shape == (3, es.MAX_TURNS + 1, 16, 16, 3) and b["cells"].shape == (3, es.MAX_TURNS + 1, 9)
    for i in range(3):
        n = int(b["num_turns"][i])
        assert b["turn_mask"][i].numpy().tolist() == [t < n for t in range(es.MAX_TURNS)]
        assert all(b["instructions"][i, t].numpy() for t in range(n)) and not b["instructions"][i, n:].numpy().any()
        for t in range(es.MAX_TURNS + 1):  # each image is the rendering of its scene; padding repeats the last one
            cells = b["cells"][i, min(t, n)].numpy()
            assert (b["cells"][i, t].numpy() == cells).all()
            from t2i_tf.data.css_cells import cells_objects

            expected = render_scene(cells_objects(cells), 16) / 127.5 - 1.0
            np.testing.assert_allclose(b["images"][i, t].numpy(), expected, atol=1e-6)
            assert scene_cells(cells_objects(cells)) == cells.tolist()


def test_training_batches_repeat_and_resize(records):
    out, _ = records
    ds = es.edit_dataset(out, "train", 5, 8, training=True, seed=0)
    first = [b for _, b in zip(range(4), ds)]
    assert all(b["images"].shape == (5, es.MAX_TURNS + 1, 8, 8, 3) for b in first)  # 12 records, 20 rows: repeated


def test_other_records_and_bad_arguments_are_refused_clearly(tiny_css, tmp_path, capsys):
    with pytest.raises(UserError, match="not CSS edit sequences"):
        es.read_edit_info(tiny_css[1])
    assert edits_main(["--out_dir", str(tmp_path / "x"), "--num_test", "0"]) == 1
    assert "--num_train and --num_test must be >= 1" in capsys.readouterr().err
