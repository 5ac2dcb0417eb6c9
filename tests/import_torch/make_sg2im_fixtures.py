"""Record of how tests/import_torch/fixtures/sg2im/* were made from the official google/sg2im code.

Not a test (needs PyTorch; pytest does not collect it). Run once, from the repository root:

    python tests/import_torch/make_sg2im_fixtures.py --mirror /work/.mirror/google+sg2im/repo \
        --out tests/import_torch/fixtures/sg2im

What it does:

1. Copies the official ``sg2im/{__init__,model,graph,layers,layout,crn,box_utils,utils}.py`` (``git show HEAD:...``
   of the bare mirror) into a scratch directory. One patch: layout.py's two ``F.grid_sample(img_in, grid)`` calls
   get ``align_corners=True``, what grid_sample computed in the PyTorch (0.4) the code was written for (PyTorch 1.3
   changed the default). Nothing else: ``F.upsample`` and the rest still run in PyTorch 2 on the CPU.
2. Builds ``Sg2ImModel`` twice with ``torch.manual_seed(0)`` at small sizes, with a vocabulary in the official layout
   (``object_idx_to_name`` / ``pred_idx_to_name`` / ``*_name_to_idx``, ``__image__`` = object 0, ``__in_image__`` =
   predicate 0) holding the CSS scene-graph names in ANOTHER order than the project's ids (the import must map
   rows by name):

   - ``sg2im_small.pt`` (torch's legacy format, as the released 2018 files): 16 px, embedding 8, graph convolutions
     8-d / hidden 12, 3 layers (GraphTripleConv + a 2-layer GraphTripleConvNet), refinement (16, 8), batch norm,
     ``leakyrelu-0.2``, masks 4 px, 2 layout noise channels;
   - ``sg2im_nomask.pt`` (zip format): no mask net (``boxes_to_layout``), ``activation='relu'`` (which
     layers.py:33-46 turns into ``nn.LeakyReLU()``, slope 0.01), no normalization, sum pooling, 1 graph
     convolution, refinement (8, 8, 8), no layout noise.

   Every BatchNorm gets random weight / bias and running statistics calibrated on the fixture's graphs (one
   train-mode forward with momentum 1, then perturbed), so eval-mode activations keep their scale and a wrong
   BN mapping shows. The box net's last layer is scaled down and biased so that boxes are not degenerate but
   the x0 pre-activation is often negative: the official final ReLU (model.py:77-78) zeroes it, which a linear
   box net would not.
3. Makes the layout noise injectable: ``torch.randn`` (model.py:167) is replaced during the forward by a function
   returning a noise tensor drawn beforehand (saved).
4. Encodes two scene graphs with the official ``encode_scene_graphs`` (4 and 2 objects, place and relative
   predicates, the ``__image__`` object and an ``__in_image__`` triple per object appended as model.py:206-209
   does; packed with ``obj_to_img``), runs ``model.eval()`` forward (predicted boxes and masks) and, for the first
   model, a ``model.train()`` forward with given boxes and masks (batch statistics), and saves
   ``<name>.pt`` = ``{'args', 'model_state', 'model_kwargs'}`` as scripts/train.py + strip_checkpoint.py write
   it (``args`` holds a few of train.py's flags, small discriminators among them), and ``<name>_io.npz``: the
   packed inputs, noise and outputs (NCHW), the box net's pre-activations, and the refinement net's input layout
   (``RefinementNetwork.layout``, crn.py:94).

Measured with the fixtures (tests/import_torch/test_sg2im.py): max |ours - official| / max |official| <= 1.2e-6
for boxes, masks, layout and images, eval and train mode.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: the repo root on the path for the tests package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.import_torch.official_scratch import git_show, scratch_copy

FILES = ("__init__", "model", "graph", "layers", "layout", "crn", "box_utils", "utils")

GRAPHS = [
    {"objects": ["large red circle", "small blue triangle", "large green rectangle", "large gray circle"],
     "relationships": [[0, "left of", 1], [2, "above", 0], [3, "below right of", 1], [1, "at bottom right", 4],
                       [3, "in the center", 4]]},
    {"objects": ["small yellow rectangle", "large purple triangle"],
     "relationships": [[0, "right of", 1], [0, "at top", 2]]},
]

SMALL = {"image_size": (16, 16), "embedding_dim": 8, "gconv_dim": 8, "gconv_hidden_dim": 12, "gconv_pooling": "avg",
         "gconv_num_layers": 3, "refinement_dims": (16, 8), "normalization": "batch", "activation": "leakyrelu-0.2",
         "mask_size": 4, "mlp_normalization": "none", "layout_noise_dim": 2}
NOMASK = {"image_size": (16, 16), "embedding_dim": 6, "gconv_dim": 6, "gconv_hidden_dim": 10, "gconv_pooling": "sum",
          "gconv_num_layers": 1, "refinement_dims": (8, 8, 8), "normalization": "none", "activation": "relu",
          "mask_size": 0, "mlp_normalization": "none", "layout_noise_dim": 0}


def official_vocab() -> dict:
    """The CSS names in the official vocabulary layout, in an order unlike the project's ids."""
    from t2i_tf.data import scene_graph as sg

    objects = ["__image__"] + list(reversed(sg.OBJECT_NAMES[1:]))
    preds = ["__in_image__"] + list(reversed(sg.PREDICATES[1:]))
    return {"object_idx_to_name": objects, "object_name_to_idx": {n: i for i, n in enumerate(objects)},
            "pred_idx_to_name": preds, "pred_name_to_idx": {n: i for i, n in enumerate(preds)}}


def _scratch(mirror: str) -> str:
    files = {f"sg2im/{f}.py": git_show(mirror, f"sg2im/{f}.py") for f in FILES}
    layout = files["sg2im/layout.py"]
    assert layout.count("F.grid_sample(img_in, grid)") == 2
    files["sg2im/layout.py"] = layout.replace("F.grid_sample(img_in, grid)",
                                              "F.grid_sample(img_in, grid, align_corners=True)")
    return scratch_copy(mirror, files, "sg2im_official_")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", default="/work/.mirror/google+sg2im/repo")
    ap.add_argument("--out", default="tests/import_torch/fixtures/sg2im")
    args = ap.parse_args()
    commit = subprocess.check_output(["git", "--git-dir", args.mirror, "rev-parse", "HEAD"], text=True).strip()
    sys.path.insert(0, _scratch(args.mirror))
    import copy
    import json

    import torch
    from sg2im.model import Sg2ImModel

    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(1)
    bns = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    noise_queue: list = []
    real_randn = torch.randn

    def fake_randn(*shape, **kw):  # model.py:167 draws the layout noise; hand out the prepared tensor
        t = noise_queue.pop(0)
        assert tuple(t.shape) == tuple(shape[0] if len(shape) == 1 else shape), (t.shape, shape)
        return t

    def forward(model, *a, noise=None, **kw):
        noise_queue[:] = [noise] if noise is not None else []
        torch.randn = fake_randn
        try:
            out = model(*a, **kw)
        finally:
            torch.randn = real_randn
        assert not noise_queue
        return out

    def n(x):
        return x.detach().numpy().copy()

    for name, kwargs, legacy in (("sg2im_small", SMALL, True), ("sg2im_nomask", NOMASK, False)):
        vocab = official_vocab()
        torch.manual_seed(0)
        model = Sg2ImModel(vocab=vocab, **kwargs)
        for m in model.modules():
            if isinstance(m, bns):
                c = m.num_features
                m.weight.data = torch.rand(c, generator=gen) + 0.5
                m.bias.data = torch.randn(c, generator=gen) * 0.1
        last = model.box_net[2]
        last.weight.data *= 0.05
        last.bias.data = torch.tensor([-0.02, 0.1, 0.7, 0.8])
        objs, triples, obj_to_img = model.encode_scene_graphs(copy.deepcopy(GRAPHS))
        num_images = len(GRAPHS)
        size = kwargs["image_size"]
        noise_dim = kwargs["layout_noise_dim"]

        def draw(num_images=num_images, noise_dim=noise_dim, size=size):
            return torch.randn(num_images, noise_dim, *size, generator=gen) if noise_dim else None

        # running statistics: one train-mode batch (momentum 1), then perturbed
        calib = [m for m in model.modules() if isinstance(m, bns)]
        for m in calib:
            m.momentum = 1.0
        model.train()
        with torch.no_grad():
            forward(model, objs, triples, obj_to_img, noise=draw())
        for m in calib:
            m.momentum = 0.1
            c = m.num_features
            m.running_mean.data += 0.1 * torch.randn(c, generator=gen) * m.running_var.sqrt()
            m.running_var.data *= torch.rand(c, generator=gen) * 0.4 + 0.8
        model.eval()
        noise = draw()
        seen = []
        hook = model.box_net.register_forward_hook(lambda mod, inp, outp, seen=seen: seen.append(inp[0]))
        with torch.no_grad():
            img, boxes, masks, _ = forward(model, objs, triples, obj_to_img, noise=noise)
            layout = model.refinement_net.layout
            box_pre = model.box_net[:3](seen[0])  # before the final ReLU
        hook.remove()
        state = {k: v.clone() for k, v in model.state_dict().items()}  # what the eval outputs came from
        assert torch.allclose(box_pre.clamp(min=0), boxes, atol=1e-6)
        assert (box_pre < 0).any() and (boxes[:, 2] > boxes[:, 0] + 0.3).all(), "boxes must be valid, some clipped"
        out = {"official_commit": np.array(commit), "objs": n(objs), "triples": n(triples),
               "obj_to_img": n(obj_to_img), "images": n(img), "boxes": n(boxes), "box_pre": n(box_pre),
               "layout": n(layout), "graphs_json": np.array(json.dumps(GRAPHS))}
        if noise is not None:
            out["noise"] = n(noise)
        if masks is not None:
            out["masks"] = n(masks)
        if name == "sg2im_small":  # train mode: batch statistics, ground-truth layout (train.py:527)
            rng = np.random.default_rng(3)
            lo = rng.uniform(0.0, 0.5, (len(objs), 2))
            boxes_gt = np.concatenate([lo, lo + rng.uniform(0.2, 0.5, (len(objs), 2))], 1).astype(np.float32)
            boxes_gt[objs.numpy() == 0] = [0, 0, 1, 1]  # the __image__ object's box, as the datasets give it
            masks_gt = (rng.uniform(size=(len(objs), 4, 4)) > 0.4).astype(np.float32)
            noise_t = draw()
            model.train()
            with torch.no_grad():
                img_t, boxes_t, masks_t, _ = forward(model, objs, triples, obj_to_img, torch.from_numpy(boxes_gt),
                                                     torch.from_numpy(masks_gt), noise=noise_t)
            out.update(boxes_gt=boxes_gt, masks_gt=masks_gt, noise_train=n(noise_t), images_train=n(img_t),
                       boxes_train=n(boxes_t), masks_train=n(masks_t))
        np.savez_compressed(os.path.join(args.out, f"{name}_io.npz"), **out)
        train_args = {"dataset": "css", "image_size": kwargs["image_size"], "checkpoint_start_from": None,
                      "refinement_network_dims": kwargs["refinement_dims"], "batch_size": 4, "learning_rate": 1e-4,
                      "d_img_arch": "C3-8-2,C3-16-2", "d_obj_arch": "C3-8-2,C3-16-2", "crop_size": 8,
                      "d_normalization": "batch", "mask_loss_weight": 0.0, "bbox_pred_loss_weight": 10.0}
        checkpoint = {"args": train_args,  # a few of train.py's args (args.__dict__, train.py:474)
                      "model_state": state, "model_kwargs": dict(kwargs, vocab=vocab)}
        torch.save(checkpoint, os.path.join(args.out, f"{name}.pt"), _use_new_zipfile_serialization=not legacy)
        print(f"{name}: {len(objs)} objects, {len(triples)} triples, image {tuple(img.shape)}, "
              f"{int((box_pre < 0).sum())} box coordinates clipped by the final ReLU")
    print(f"wrote {args.out} from google/sg2im {commit}")


if __name__ == "__main__":
    main()
