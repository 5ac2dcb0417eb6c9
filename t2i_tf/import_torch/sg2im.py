"""google/sg2im checkpoints -> the project's :class:`~t2i_tf.models.sg2im.Sg2ImGenerator`.

An official checkpoint (scripts/train.py:473-497, 633; stripped by scripts/strip_checkpoint.py to ``args``,
``model_state``, ``model_kwargs`` and the discriminators' entries, as the released ``sg2im-models/*.pt``) holds
``Sg2ImModel``'s state dict and the kwargs it was built with, vocabulary included. Read with the restricted
``.pth`` reader (nothing from the file runs), mapped tensor by tensor:

- ``obj_embeddings.weight`` ``[num_objs + 1, E]`` / ``pred_embeddings.weight`` ``[P, E]``: rows by NAME onto our
  ids (objects: id = index in ``object_names`` + 1, 0 = padding; predicates: id = index in ``predicates``); by
  default our names are the official ``object_idx_to_name`` / ``pred_idx_to_name`` (so our id = official + 1);
- ``gconv.*`` -> ``gconv0``, ``gconv_net.gconvs.<i>.*`` -> ``gconv<i+1>``; each ``net1`` / ``net2`` build_mlp
  ``Sequential(Linear, ReLU, Linear, ReLU)`` -> ``linear0`` / ``linear1`` (Linear transposed);
- ``box_net.0`` / ``box_net.2`` -> ``box_net.linear0`` / ``linear1`` (the official final ReLU is
  ``box_net_final_relu=True``);
- ``mask_net.<4k+1>`` (BatchNorm2d) / ``<4k+2>`` (Conv 3x3) -> ``norm<k>`` / ``conv<k>``, the last 1x1 conv ->
  ``output_conv``;
- ``refinement_net.refinement_modules.<k>.net.*`` (conv, [norm], act, conv, [norm], act) -> ``module<k>``
  ``conv1`` / ``norm1`` / ``conv2`` / ``norm2``; ``output_conv.0`` / ``.2`` -> ``output_conv1`` / ``2``;
- convs ``[O, I, kh, kw]`` -> ``[kh, kw, I, O]``; BatchNorm weight / bias / running stats -> gamma / beta / moving
  stats; ``num_batches_tracked`` and the unused ``rel_aux_net.*`` (its output is never used with the default
  ``predicate_pred_loss_weight`` 0, train.py:111) are dropped.

A missing tensor, a tensor left over, a weight no tensor filled, or a shape mismatch is a one-line
:class:`~t2i_tf.errors.UserError` naming the tensor. Not supported (refused with a line): ``mlp_normalization=
'batch'`` and ``gconv_num_layers=0`` (ablations), non-square images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from t2i_tf.errors import UserError

# Sg2ImModel's own defaults (sg2im/model.py:30-35), for kwargs a checkpoint leaves out.
MODEL_DEFAULTS: dict[str, Any] = {
    "image_size": (64, 64), "embedding_dim": 64, "gconv_dim": 128, "gconv_hidden_dim": 512, "gconv_pooling": "avg",
    "gconv_num_layers": 5, "refinement_dims": (1024, 512, 256, 128, 64), "normalization": "batch",
    "activation": "leakyrelu-0.2", "mask_size": None, "mlp_normalization": "none", "layout_noise_dim": 0}
IGNORED_PREFIXES = ("rel_aux_net.",)


# ------------------------------------------------------------------ reading
def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """(state dict, model_kwargs, args) of an official checkpoint ``.pt``; ``module.`` prefixes (DataParallel)
    dropped as train.py:167-170 does."""
    from t2i_tf.import_torch import pth

    if not path or not os.path.isfile(path):
        raise UserError(f"checkpoint file {path!r} does not exist")
    obj = pth.load_checkpoint(path)
    if not isinstance(obj, dict) or "model_state" not in obj:
        keys = ", ".join(map(repr, list(obj)[:10])) if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"{path} is not a google/sg2im checkpoint: no 'model_state' entry (it has {keys})")
    sd = obj["model_state"]
    if not pth._is_state_dict(sd):
        raise UserError(f"{path}: 'model_state' is not a state dict of tensors")
    kwargs = obj.get("model_kwargs")
    if not isinstance(kwargs, dict):
        raise UserError(f"{path}: no 'model_kwargs' entry (scripts/train.py saves the Sg2ImModel kwargs there)")
    args = obj.get("args") if isinstance(obj.get("args"), dict) else {}
    return {k.removeprefix("module."): v for k, v in sd.items()}, dict(kwargs), dict(args)


def check_vocab(vocab: Any, where: str) -> dict[str, Any]:
    """``vocab`` with the four official entries (object / pred ``idx_to_name`` lists, ``name_to_idx`` dicts)."""
    if not isinstance(vocab, dict):
        raise UserError(f"{where}: the vocabulary must be a JSON object (sg2im's vocab.json); got "
                        f"{type(vocab).__name__}")
    for key, kind in (("object_idx_to_name", list), ("pred_idx_to_name", list), ("object_name_to_idx", dict),
                      ("pred_name_to_idx", dict)):
        if not isinstance(vocab.get(key), kind):
            raise UserError(f"{where}: the vocabulary has no {kind.__name__} {key!r} (keys: "
                            f"{', '.join(map(repr, list(vocab)[:8]))})")
    return vocab


def activation_slope(name: str) -> float:
    """The leaky ReLU slope sg2im/layers.py get_activation gives ``name``: 'leakyrelu-<s>' -> s; anything else ->
    nn.LeakyReLU's default 0.01 (layers.py:39 resets the name to 'leakyrelu' for every input, 'relu' included)."""
    name = str(name)
    if name.lower().startswith("leakyrelu") and "-" in name:
        try:
            return float(name.split("-")[1])
        except ValueError:
            raise UserError(f"activation {name!r}: not leakyrelu-<slope>") from None
    return 0.01


def generator_config(sd: dict[str, np.ndarray], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Sg2ImGenerator keyword arguments (without the vocabulary sizes) of an official model, checked against the
    state dict."""
    k = dict(MODEL_DEFAULTS, **{key: v for key, v in kwargs.items() if key != "vocab"})
    size = k["image_size"]
    size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
    if len(size) != 2 or size[0] != size[1]:
        raise UserError(f"model_kwargs image_size {size}: only square images are supported")
    if k["mlp_normalization"] != "none":
        raise UserError(f"model_kwargs mlp_normalization={k['mlp_normalization']!r}: only 'none' (the default, "
                        "train.py:100) is supported (no BatchNorm1d in the graph-convolution / box MLPs here)")
    if int(k["gconv_num_layers"]) < 1:
        raise UserError("model_kwargs gconv_num_layers=0 (the no-graph-convolution ablation, a Linear instead) is "
                        "not supported")
    if k["normalization"] not in ("batch", "instance", "none"):
        raise UserError(f"model_kwargs normalization {k['normalization']!r}: expected batch | instance | none")
    if k["gconv_pooling"] not in ("avg", "sum"):
        raise UserError(f"model_kwargs gconv_pooling {k['gconv_pooling']!r}: expected avg | sum")
    emb = _shape(sd, "obj_embeddings.weight")
    if len(emb) != 2 or emb[1] != int(k["embedding_dim"]):
        raise UserError(f"obj_embeddings.weight has shape {emb}; model_kwargs embedding_dim is {k['embedding_dim']}")
    mask_size = int(k["mask_size"] or 0)
    return {"image_size": int(size[0]), "embedding_dim": int(k["embedding_dim"]), "gconv_dim": int(k["gconv_dim"]),
            "gconv_hidden_dim": int(k["gconv_hidden_dim"]), "gconv_layers": int(k["gconv_num_layers"]),
            "gconv_pooling": str(k["gconv_pooling"]), "refinement_dims": tuple(int(d) for d in k["refinement_dims"]),
            "normalization": str(k["normalization"]), "slope": activation_slope(k["activation"]),
            "mask_size": mask_size, "layout_noise_dim": int(k["layout_noise_dim"] or 0), "box_net_final_relu": True}


def _shape(sd: dict[str, np.ndarray], name: str) -> tuple[int, ...]:
    if name not in sd:
        raise UserError(f"sg2im checkpoint: tensor {name!r} is missing")
    return tuple(int(d) for d in np.shape(sd[name]))


# ------------------------------------------------------------------ vocabularies
def embedding_rows(name_to_idx: dict[str, int], idx_to_name: Sequence[str], names: Sequence[str], offset: int,
                   what: str) -> np.ndarray:
    """For each of our ids (``offset`` + index of ``names``; ids below ``offset`` -> -1, zero rows) the official
    row of the same name; a name the official ``name_to_idx`` lacks but ``idx_to_name`` has at the same position
    (COCO's 'NONE' holes, never used) keeps that row."""
    rows = np.full(len(names) + offset, -1, np.int64)
    missing = []
    for i, n in enumerate(names):
        if n in name_to_idx:
            rows[i + offset] = int(name_to_idx[n])
        elif i < len(idx_to_name) and idx_to_name[i] == n:
            rows[i + offset] = i
        else:
            missing.append(n)
    if missing:
        raise UserError(f"the checkpoint's vocabulary has no {what} {missing[0]!r}"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}")
    return rows


def vocab_rows(vocab: dict[str, Any], object_names: Sequence[str] | None = None,
               predicates: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(object rows, predicate rows): the official embedding row of each of our ids. Our object id = index in
    ``object_names`` + 1 (0 = padding), predicate id = index in ``predicates``; by default the official lists
    (so object id = official id + 1, predicate id = official id)."""
    if object_names is None:
        obj = np.concatenate([[-1], np.arange(len(vocab["object_idx_to_name"]))]).astype(np.int64)
    else:
        obj = embedding_rows(vocab["object_name_to_idx"], vocab["object_idx_to_name"], object_names, 1, "object")
    if predicates is None:
        pred = np.arange(len(vocab["pred_idx_to_name"]), dtype=np.int64)
    else:
        pred = embedding_rows(vocab["pred_name_to_idx"], vocab["pred_idx_to_name"], predicates, 0, "predicate")
    return obj, pred


# ------------------------------------------------------------------ the model
def build_generator(config: dict[str, Any], num_objects: int, num_predicates: int):
    """A built Sg2ImGenerator for :func:`generator_config`'s ``config``."""
    import tensorflow as tf

    from t2i_tf.models.sg2im import Sg2ImGenerator

    c = dict(config)
    gen = Sg2ImGenerator(num_objects, num_predicates, c.pop("image_size"), c.pop("embedding_dim"), **c,
                         name="generator")
    gen({"objects": tf.constant([[1, 2]]), "triples": tf.constant([[[1, 0, 0]]])})
    return gen


def assign_generator(gen: Any, sd: dict[str, np.ndarray], object_rows: np.ndarray, predicate_rows: np.ndarray) -> None:
    """Copy the official state dict ``sd`` into the built generator ``gen`` (rows of the embeddings as given)."""
    pairs: list[tuple[Any, str, np.ndarray]] = []  # (our variable, official name, value in our layout)
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        if name not in sd:
            raise UserError(f"sg2im checkpoint: tensor {name!r} is missing")
        used.add(name)
        return np.asarray(sd[name])

    def dense(layer, prefix):
        pairs.append((layer.kernel, f"{prefix}.weight", get(f"{prefix}.weight").T))
        pairs.append((layer.bias, f"{prefix}.bias", get(f"{prefix}.bias")))

    def conv(layer, prefix):
        pairs.append((layer.kernel, f"{prefix}.weight", np.transpose(get(f"{prefix}.weight"), (2, 3, 1, 0))))
        pairs.append((layer.bias, f"{prefix}.bias", get(f"{prefix}.bias")))

    def norm(layer, prefix):
        if layer is None:
            return
        if not hasattr(layer, "moving_mean"):  # instance norm: InstanceNorm2d(affine=False) has no tensors
            pairs.append((layer.gamma, f"{prefix} (InstanceNorm2d, no weight)", np.ones(layer.gamma.shape)))
            pairs.append((layer.beta, f"{prefix} (InstanceNorm2d, no bias)", np.zeros(layer.beta.shape)))
            return
        for var, key in ((layer.gamma, "weight"), (layer.beta, "bias"), (layer.moving_mean, "running_mean"),
                         (layer.moving_variance, "running_var")):
            pairs.append((var, f"{prefix}.{key}", get(f"{prefix}.{key}")))
        used.add(f"{prefix}.num_batches_tracked")

    def rows(name: str, index: np.ndarray, var) -> None:
        table = get(name)
        if index.max(initial=-1) >= len(table):
            raise UserError(f"sg2im checkpoint: {name} has {len(table)} rows; the vocabulary needs "
                            f"{int(index.max()) + 1}")
        out = np.zeros((len(index), table.shape[1]), table.dtype)
        out[index >= 0] = table[index[index >= 0]]
        pairs.append((var, name, out))

    rows("obj_embeddings.weight", object_rows, gen.obj_embeddings.embeddings)
    rows("pred_embeddings.weight", predicate_rows, gen.pred_embeddings.embeddings)
    for i in range(gen.num_gconvs):
        prefix = "gconv" if i == 0 else f"gconv_net.gconvs.{i - 1}"
        g = getattr(gen, f"gconv{i}")
        for net in ("net1", "net2"):
            for j in range(2):
                dense(getattr(getattr(g, net), f"linear{j}"), f"{prefix}.{net}.{2 * j}")
    dense(gen.box_net.linear0, "box_net.0")
    dense(gen.box_net.linear1, "box_net.2")
    if gen.mask_net is not None:
        for k in range(gen.mask_net.steps):
            norm(getattr(gen.mask_net, f"norm{k}"), f"mask_net.{4 * k + 1}")
            conv(getattr(gen.mask_net, f"conv{k}"), f"mask_net.{4 * k + 2}")
        conv(gen.mask_net.out, f"mask_net.{4 * gen.mask_net.steps}")
    crn = gen.refinement
    for k in range(crn.num_modules):
        m = getattr(crn, f"module{k}")
        step = 3 if m.norm1 is not None else 2  # conv, [norm], act per half
        prefix = f"refinement_net.refinement_modules.{k}.net"
        conv(m.conv1, f"{prefix}.0")
        norm(m.norm1, f"{prefix}.1")
        conv(m.conv2, f"{prefix}.{step}")
        norm(m.norm2, f"{prefix}.{step + 1}")
    conv(crn.out1, "refinement_net.output_conv.0")
    conv(crn.out2, "refinement_net.output_conv.2")

    left = sorted(k for k in sd if k not in used and not k.startswith(IGNORED_PREFIXES))
    if left:
        raise UserError(f"sg2im checkpoint: tensor {left[0]!r} has no place in the generator"
                        f"{f' (and {len(left) - 1} more)' if len(left) > 1 else ''}: not this architecture")
    assigned = {id(v) for v, _, _ in pairs}
    unfilled = [v.path for v in gen.weights if id(v) not in assigned]
    if unfilled:
        raise UserError(f"sg2im checkpoint: no tensor for our weight {unfilled[0]}")
    for var, name, value in pairs:
        if tuple(var.shape) != value.shape:
            raise UserError(f"sg2im checkpoint: {name} has shape {tuple(np.shape(sd.get(name, value)))}, "
                            f"the generator needs {tuple(var.shape)} (in torch layout) for {var.path}")
    for var, _, value in pairs:
        var.assign(value.astype(np.float32))


def import_generator(sd: dict[str, np.ndarray], kwargs: dict[str, Any], vocab: dict[str, Any] | None = None,
                     object_names: Sequence[str] | None = None, predicates: Sequence[str] | None = None,
                     box_net_final_relu: bool = True):
    """(Sg2ImGenerator, config) of an official state dict + model_kwargs; the vocabulary is ``vocab`` or
    ``kwargs['vocab']``; ``object_names`` / ``predicates``: our ids' names (default: the official order)."""
    vocab = check_vocab(vocab if vocab is not None else kwargs.get("vocab"), "model_kwargs['vocab']")
    config = dict(generator_config(sd, kwargs), box_net_final_relu=box_net_final_relu)
    obj, pred = vocab_rows(vocab, object_names, predicates)
    gen = build_generator(config, len(obj), len(pred))
    assign_generator(gen, sd, obj, pred)
    return gen, config


# ------------------------------------------------------------------ graphs
def padded_graphs(objs: np.ndarray, triples: np.ndarray, obj_to_img: np.ndarray,
                  object_ids: np.ndarray | None = None,
                  predicate_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official packed graphs (``objs`` [O], ``triples`` [T, 3] of packed indices, ``obj_to_img`` [O]) as our
    padded ones: (objects [N, Omax] of our ids, 0 = none; triples [N, Tmax, 3] with per-image slots, -1 rows;
    slot [O] -> (image, slot) of each packed object). ``object_ids`` / ``predicate_ids`` map official ids to ours
    (default +1 / the same)."""
    objs, triples, obj_to_img = (np.asarray(x, np.int64) for x in (objs, triples, obj_to_img))
    object_ids = np.arange(1, objs.max() + 2) if object_ids is None else np.asarray(object_ids)
    predicate_ids = np.arange(triples[:, 1].max() + 1) if predicate_ids is None else np.asarray(predicate_ids)
    n = int(obj_to_img.max()) + 1
    slot = np.zeros_like(objs)
    counts = np.zeros(n, np.int64)
    for i, img in enumerate(obj_to_img):
        slot[i], counts[img] = counts[img], counts[img] + 1
    tri_img = obj_to_img[triples[:, 0]]
    if np.any(obj_to_img[triples[:, 2]] != tri_img):
        raise ValueError("a triple relates objects of two images")
    t_counts = np.bincount(tri_img, minlength=n)
    out_o = np.zeros((n, int(counts.max())), np.int32)
    out_t = np.full((n, max(int(t_counts.max()), 1), 3), -1, np.int32)
    out_o[obj_to_img, slot] = object_ids[objs]
    fill = np.zeros(n, np.int64)
    for s, p, o in triples:
        img = obj_to_img[s]
        out_t[img, fill[img]] = (slot[s], predicate_ids[p], slot[o])
        fill[img] += 1
    return out_o, out_t, np.stack([obj_to_img, slot], 1)


def encode_scene_graphs(graphs: Sequence[dict[str, Any]], vocab: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Official JSON scene graphs (``{"objects": [names], "relationships": [[i, predicate, j]]}``) -> our padded
    (objects, triples) with ids = official + 1 / official, as ``Sg2ImModel.encode_scene_graphs`` encodes them
    (sg2im/model.py:198-227: an ``__image__`` object appended, ``[i, '__in_image__', image]`` for every object)."""
    vocab = check_vocab(vocab, "vocab")
    objs, triples, obj_to_img = [], [], []
    for i, g in enumerate(graphs):
        names = list(g["objects"]) + ["__image__"]
        rels = [list(r) for r in g.get("relationships", [])] + [[j, "__in_image__", len(names) - 1]
                                                                 for j in range(len(names) - 1)]
        base = len(objs)
        for name in names:
            if name not in vocab["object_name_to_idx"]:
                raise UserError(f'Object "{name}" not in vocab')
            objs.append(vocab["object_name_to_idx"][name])
            obj_to_img.append(i)
        for s, p, o in rels:
            if p not in vocab["pred_name_to_idx"]:
                raise UserError(f'Relationship "{p}" not in vocab')
            triples.append([base + int(s), vocab["pred_name_to_idx"][p], base + int(o)])
    o, t, _ = padded_graphs(np.array(objs), np.array(triples), np.array(obj_to_img),
                            np.arange(1, len(vocab["object_idx_to_name"]) + 1),
                            np.arange(len(vocab["pred_idx_to_name"])))
    return o, t
