"""The sg2im demo reads graphs in the export's own vocabulary (CSS, or Visual Genome / COCO-Stuff names)."""

import numpy as np
import pytest

from t2i_tf.data import scene_graph as sg
from t2i_tf.errors import UserError
from t2i_tf.serve.demos import graph_vocab

VG_DESCRIPTION = {"dataset": "vg", "object_names": ["__image__", "man", "tree", "NONE"],
                  "predicates": ["__in_image__", "near", "on"], "unused_object_names": ["NONE"], "max_objects": 3}


def test_a_css_export_reads_captions_with_the_css_vocabulary():
    vocab, most = graph_vocab({"dataset": "css", "object_names": list(sg.CSS_VOCAB.object_names)})
    assert vocab is sg.CSS_VOCAB and most == sg.MAX_CSS_OBJECTS
    objects, _ = sg.read_graph("a large red circle at the top left", most, vocab)
    assert (objects > sg.IMAGE_ID).sum() == 1


def test_a_vg_export_reads_its_own_names_and_refuses_others():
    vocab, most = graph_vocab(VG_DESCRIPTION)
    assert most == 3 and vocab.dataset == "vg"
    objects, triples = sg.read_graph('{"objects": ["man", "tree"], "relationships": [[0, "near", 1]]}', most, vocab)
    np.testing.assert_array_equal(objects, [sg.IMAGE_ID, 2, 3])  # id = position in object_names + 1
    assert [1, 1, 2] in triples.tolist()  # (slot of man, "near", slot of tree)
    with pytest.raises(UserError, match="unknown object 'circle'"):
        sg.read_graph('{"objects": ["circle"]}', most, vocab)
    with pytest.raises(UserError):  # COCO / VG holes are never read
        sg.read_graph('{"objects": ["NONE"]}', most, vocab)
    with pytest.raises(UserError, match="at most 3"):
        sg.read_graph('{"objects": ["man", "man", "tree", "tree"]}', most, vocab)
