"""google/tirg checkpoints -> our paper-preset TIRG model (no PyTorch needed).

The official ``latest_checkpoint.pth`` holds ``model_state_dict``: the parameters of
``img_model`` (torchvision resnet18, its fc replaced by ``Sequential(Linear(512, embed_dim))``),
``text_model`` (TextLSTMModel), the composer (``gated_feature_composer`` / ``res_info_composer`` /
``a`` for TIRG; ``composer.m`` for concat; ``mod2d`` / ``mod2d_gate`` / ``a`` for tirg_lastconv) and
``normalization_layer.norm_s``. The official vocabulary is not saved: it is rebuilt from the
training texts by :func:`official_vocabulary` (google/tirg text_model.py:22-47).

Building blocks (the CLI that writes a run directory composes them):

- :func:`official_vocabulary` (texts -> our vocabulary list, in the official id order)
- :func:`config_for_state_dict` (state dict + overrides -> the paper-preset config that fits it)
- :func:`build_model` (config + vocabulary -> an unbuilt-weights ComposedRetrievalModel, built)
- :func:`load_tirg_state_dict` (state dict -> every model variable; every tensor must be consumed)
- :func:`import_tirg` (all of the above)
- :func:`load_resnet18_weights` / :func:`read_state_dict` (``--image_weights``: a torchvision
  resnet18 state dict file, ``.pth`` or ``.npz``, into the image encoder)
"""

from __future__ import annotations

import os
import string
from typing import Any, Callable, Mapping

import numpy as np

from t2i_tf.errors import UserError

# Our Tokenizer: id 0 = padding, 1 = out of vocabulary, word w = 2 + its index in the vocabulary list.
# google/tirg's SimpleVocab: id 0 = <UNK>, then the words in sorted order from 1. So with our vocabulary
# = the official words in the official order, our embedding row r (r >= 1) is the official row r - 1.
UNK_ROW = 1
_OFFICIAL_PUNCT = str.maketrans("", "", string.punctuation)


def official_tokens(text: str) -> list[str]:
    """google/tirg's SimpleVocab.tokenize_text (text_model.py:31-36): ASCII only, lower case, punctuation
    removed, split on whitespace."""
    return text.encode("ascii", "ignore").decode("ascii").lower().translate(_OFFICIAL_PUNCT).strip().split()


def official_vocabulary(texts: list[str] | np.ndarray) -> list[str]:
    """The official vocabulary as our word list: every token of ``texts`` (no count threshold: the official
    training never calls threshold_rare_words), sorted (text_model.py:38-47). Official id = our index + 1."""
    words = sorted({w for t in texts for w in official_tokens(str(t))} - {"<UNK>"})
    if not words:
        raise UserError("cannot build the TIRG vocabulary: no words in the training texts")
    return words


# ------------------------------------------------------------------ reading files
def read_state_dict(path: str, key: str | None = None) -> dict[str, np.ndarray]:
    """A state dict from ``path``: ``.npz`` (names -> arrays) or a PyTorch ``.pth`` read without torch by
    :mod:`t2i_tf.import_torch.pth` (``key`` picks a sub-dict, e.g. ``model_state_dict``)."""
    if not path or not os.path.isfile(path):
        raise UserError(f"weights file {path!r} does not exist")
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                sd = {k: np.asarray(z[k]) for k in z.files}
            inner = {k[len(key) + 1:]: v for k, v in sd.items() if key and k.startswith(key + ".")}
            return inner or sd  # "model_state_dict.<name>" keys, or the names themselves
        from t2i_tf.import_torch import pth

        return {k: np.asarray(v) for k, v in pth.load_state_dict(path, key=key).items()}
    except UserError:
        raise
    except ImportError as e:
        raise UserError(f"cannot read {path}: the .pth reader is not available ({e}); give an .npz of the state dict")
    except Exception as e:  # a corrupt or foreign file: say which file, not a traceback
        raise UserError(f"cannot read the state dict in {path}: {type(e).__name__}: {e}") from None


# ------------------------------------------------------------------ mapping
def _conv(w: np.ndarray) -> np.ndarray:  # torch (O, I, kh, kw) -> Keras (kh, kw, I, O)
    return np.transpose(w, (2, 3, 1, 0))


def _linear(w: np.ndarray) -> np.ndarray:  # torch (out, in) -> Keras (in, out)
    return np.transpose(w)


def _same(w: np.ndarray) -> np.ndarray:
    return w


class _Mapper:
    """Assigns torch tensors to Keras variables; remembers what it consumed, refuses shape mismatches."""

    def __init__(self, state_dict: Mapping[str, np.ndarray], what: str):
        self.sd = {k: np.asarray(v) for k, v in state_dict.items()}
        self.what = what
        self.used: set[str] = set()
        self.assignments: list[tuple[Any, np.ndarray]] = []

    def take(self, name: str) -> np.ndarray:
        if name not in self.sd:
            raise UserError(f"{self.what}: tensor {name!r} is missing (the state dict has {len(self.sd)} tensors, "
                            f"e.g. {', '.join(sorted(self.sd)[:4])})")
        self.used.add(name)
        return self.sd[name]

    def ignore(self, name: str) -> None:
        """A tensor the official forward does not read (e.g. BN's num_batches_tracked)."""
        if name in self.sd:
            self.used.add(name)

    def put(self, name: str, variable: Any, fn: Callable[[np.ndarray], np.ndarray] = _same) -> None:
        value = fn(self.take(name).astype(np.float32))
        want = tuple(variable.shape)
        if value.shape != want:
            raise UserError(f"{self.what}: tensor {name!r} has shape {tuple(self.take(name).shape)} "
                            f"(-> {value.shape}); our {variable.path} needs {want}")
        self.assignments.append((variable, value))

    def bn(self, prefix: str, layer: Any) -> None:
        self.put(f"{prefix}.weight", layer.gamma)
        self.put(f"{prefix}.bias", layer.beta)
        self.put(f"{prefix}.running_mean", layer.moving_mean)
        self.put(f"{prefix}.running_var", layer.moving_variance)
        self.ignore(f"{prefix}.num_batches_tracked")

    def dense(self, prefix: str, layer: Any) -> None:
        self.put(f"{prefix}.weight", layer.kernel, _linear)
        self.put(f"{prefix}.bias", layer.bias)

    def conv(self, prefix: str, layer: Any) -> None:
        self.put(f"{prefix}.weight", layer.kernel, _conv)
        if layer.use_bias:
            self.put(f"{prefix}.bias", layer.bias)

    def finish(self, allow_unused: tuple[str, ...] = ()) -> None:
        unused = sorted(k for k in self.sd if k not in self.used and not k.startswith(allow_unused))
        if unused:
            shapes = ", ".join(f"{k} {tuple(self.sd[k].shape)}" for k in unused[:6])
            raise UserError(f"{self.what}: {len(unused)} tensor(s) not used by the model: {shapes}"
                            f"{' ...' if len(unused) > 6 else ''}")
        for variable, value in self.assignments:
            variable.assign(value)


def _map_resnet(m: _Mapper, encoder: Any, prefix: str) -> None:
    """torchvision resnet18 names (under ``prefix``) -> :class:`ResNetEncoder` (without its fc)."""
    if encoder.stem_kind != "imagenet":
        raise UserError("torchvision ResNet weights need --image_stem=imagenet")
    m.conv(f"{prefix}conv1", encoder.stem_conv)
    m.bn(f"{prefix}bn1", encoder.stem_bn)
    per_stage: dict[int, int] = {}
    for name in encoder.block_names:  # stage{i}_block{j}
        stage, block = (int(x) for x in name.replace("stage", "").split("_block"))
        per_stage[stage] = max(per_stage.get(stage, 0), block)
        blk, t = getattr(encoder, name), f"{prefix}layer{stage}.{block - 1}."
        m.conv(t + "conv1", blk.conv1)
        m.bn(t + "bn1", blk.bn1)
        m.conv(t + "conv2", blk.conv2)
        m.bn(t + "bn2", blk.bn2)
        if blk.proj is not None:
            m.conv(t + "downsample.0", blk.proj)
            m.bn(t + "downsample.1", blk.proj_bn)


def load_resnet18_weights(encoder: Any, state_dict: Mapping[str, np.ndarray], prefix: str = "") -> None:
    """A torchvision resnet18 state dict (``--image_weights``) into a built :class:`ResNetEncoder`.

    Every tensor is used except ``fc.*`` (ImageNet's 1000-way classifier: google/tirg replaces it by the
    embedding layer, img_text_composition_models.py:107, which stays at its initial value).
    """
    m = _Mapper(state_dict, "--image_weights")
    _map_resnet(m, encoder, prefix)
    m.finish(allow_unused=(f"{prefix}fc.",))


def load_tirg_state_dict(model: Any, state_dict: Mapping[str, np.ndarray]) -> None:
    """An official TIRG ``model_state_dict`` into a built paper-preset :class:`ComposedRetrievalModel`.

    Every tensor is consumed (``a[2:]``, which the official forward never reads, and BN's
    ``num_batches_tracked`` included); a missing or unused tensor or a shape mismatch is a UserError naming it.
    LSTM: both use gate order i, f, g(c), o; Keras has one bias = torch's b_ih + b_hh. Embedding: our row 0
    is padding (zeros), rows 1.. are the official rows 0.. (see :data:`UNK_ROW`).
    """
    m = _Mapper(state_dict, "TIRG checkpoint")
    img, txt = model.image_encoder, model.text_encoder
    _map_resnet(m, img, "img_model.")
    m.dense("img_model.fc.0", img.fc)

    def embedding(w):
        return np.concatenate([np.zeros_like(w[:1]), w], axis=0)

    m.put("text_model.embedding_layer.weight", txt.embedding.embeddings, embedding)
    cell = txt.lstm.cell
    m.put("text_model.lstm.weight_ih_l0", cell.kernel, _linear)
    m.put("text_model.lstm.weight_hh_l0", cell.recurrent_kernel, _linear)
    b_hh = m.take("text_model.lstm.bias_hh_l0").astype(np.float32)
    m.put("text_model.lstm.bias_ih_l0", cell.bias, lambda b: b + b_hh if b.shape == b_hh.shape else b)
    m.dense("text_model.fc_output.1", txt.fc)

    comp, kind = model.composer, model.composition
    if kind in ("tirg", "tirg_lastconv"):
        m.put("a", comp.weights_gr, lambda a: a[:2])
    if kind == "tirg":
        m.bn("gated_feature_composer.1", comp.gate_bn)
        m.dense("gated_feature_composer.3", comp.gate_fc)
        m.bn("res_info_composer.1", comp.res_bn)
        m.dense("res_info_composer.3", comp.res_fc1)
        m.dense("res_info_composer.5", comp.res_fc2)
    elif kind == "tirg_lastconv":
        for torch_name, ours in (("mod2d", "res"), ("mod2d_gate", "gate")):
            m.bn(f"{torch_name}.0", getattr(comp, f"{ours}_bn"))
            m.conv(f"{torch_name}.1", getattr(comp, f"{ours}_conv1"))
            m.conv(f"{torch_name}.3", getattr(comp, f"{ours}_conv2"))
    elif kind == "concat":
        m.bn("composer.m.0", comp.bn)
        m.dense("composer.m.2", comp.fc1)
        m.bn("composer.m.3", comp.bn2)
        m.dense("composer.m.6", comp.fc2)
    m.put("normalization_layer.norm_s", model.normalize.scale, lambda s: s.reshape(()))
    m.finish()


# ------------------------------------------------------------------ whole model
def config_for_state_dict(state_dict: Mapping[str, np.ndarray], composition: str | None = None,
                          **overrides: Any) -> dict[str, Any]:
    """The paper preset with the sizes the checkpoint has (embed_dim from ``img_model.fc.0``) and its
    composition (from which composer tensors it holds, unless given)."""
    from configs import tirg as cfg

    if "img_model.fc.0.weight" not in state_dict:
        raise UserError("not a google/tirg model_state_dict: no 'img_model.fc.0.weight' tensor")
    embed_dim = int(np.shape(state_dict["img_model.fc.0.weight"])[0])
    if composition is None:
        if "gated_feature_composer.3.weight" in state_dict:
            composition = "tirg"
        elif "mod2d.1.weight" in state_dict:
            composition = "tirg_lastconv"
        elif "composer.m.2.weight" in state_dict:
            composition = "concat"
        else:
            raise UserError("cannot tell the composition of this checkpoint (imgonly and textonly hold the same "
                            "tensors): give composition='imgonly' or 'textonly'")
    return dict(cfg.PAPER, composition=composition, embed_dim=embed_dim, text_embed_dim=embed_dim,
                text_hidden_dim=embed_dim, **overrides)


def build_model(config: Mapping[str, Any], vocabulary: list[str]) -> Any:
    """A built paper-architecture :class:`ComposedRetrievalModel` for ``config`` and ``vocabulary``."""
    import tensorflow as tf

    from t2i_tf.models.tirg import ComposedRetrievalModel
    from t2i_tf.tasks.tirg import model_from_config

    model = model_from_config(config, vocab_size=len(vocabulary) + 2)
    s = int(config["image_size"])
    x = tf.zeros([2, s, s, 3])
    model((x, tf.ones([2, 2], tf.int64), x), training=False)
    assert isinstance(model, ComposedRetrievalModel)
    return model


def import_tirg(state_dict: Mapping[str, np.ndarray], vocabulary_texts: list[str] | None = None,
                vocabulary: list[str] | None = None, **overrides: Any) -> tuple[Any, dict[str, Any], list[str]]:
    """(model, config, vocabulary) from an official ``model_state_dict``.

    Give the official training texts (``vocabulary_texts``: CSS's ``mods[i]['to_str']`` of the train split,
    what ``trainset.get_all_texts()`` returns) or the vocabulary list itself. The embedding's row count must
    be the vocabulary's + 1, so a wrong vocabulary is refused rather than silently shifting word ids.
    """
    if vocabulary is None:
        if vocabulary_texts is None:
            raise UserError("import_tirg needs the training texts (or the vocabulary) to rebuild word ids")
        vocabulary = official_vocabulary(vocabulary_texts)
    emb = state_dict.get("text_model.embedding_layer.weight")
    if emb is not None and np.shape(emb)[0] != len(vocabulary) + 1:
        raise UserError(f"the checkpoint's embedding has {np.shape(emb)[0]} rows; the vocabulary has "
                        f"{len(vocabulary)} words + <UNK> = {len(vocabulary) + 1}: not the texts it was trained on")
    config = config_for_state_dict(state_dict, **overrides)
    model = build_model(config, vocabulary)
    load_tirg_state_dict(model, state_dict)
    return model, config, vocabulary
