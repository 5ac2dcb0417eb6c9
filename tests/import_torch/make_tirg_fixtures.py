"""Record of how tests/import_torch/fixtures/tirg/ was made from google/tirg's own code (run once; needs torch).

Not a test (pytest does not collect it): it documents the fixtures and regenerates them with

    PYTHONPATH=/tmp/tv python -m tests.import_torch.make_tirg_fixtures   # from the repo root

where /tmp/tv holds torchvision (``pip install --no-deps --target /tmp/tv torchvision==0.29.1`` for torch 2.14).

1. The official files img_text_composition_models.py, text_model.py and torch_functions.py are read from the
   bare mirror of github.com/google/tirg (HEAD) into a scratch dir and patched only for CPU / offline /
   current torchvision: ``.cuda()`` removed, ``resnet18(pretrained=True)`` -> ``resnet18(weights=None)``.
   Nothing of that code is kept in the repository.
2. For each composition (tirg, concat, tirg_lastconv) the official model is built with embed_dim=32 over
   VOCAB_TEXTS (the image model is torchvision's ResNet-18 by construction), and every tensor of its
   state dict is replaced by :func:`synthetic_state_dict` (numpy only, from SEED and the tensor's name, so the
   test regenerates the 11.7M weights instead of committing 45 MB); the model is run in eval mode.
3. Saved: ``inputs.npz`` (the uint8 images and the texts), ``<composition>.npz`` (the official outputs),
   ``state_dicts.json`` (each state dict's names and shapes) and ``vocab.json`` (the official word -> id).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

SEED = 20190
EMBED_DIM = 32
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tirg")
MIRROR = "/work/.mirror/google+tirg/repo"
COMPOSITIONS = {"tirg": "TIRG", "concat": "Concat", "tirg_lastconv": "TIRGLastConv"}
VOCAB_TEXTS = [
    "add red cube to middle-left",
    "make top-left large circle green",
    "remove gray sphere",
    "Make the bottom-center object small!",
    "add small cyan triangle to top-right",
    "make middle-center yellow rectangle blue",
]
# The second text has a word outside the vocabulary ("purple": official <UNK> = 0) and different lengths.
TEXTS = ["make top-left large circle green", "add small purple triangle to bottom-center"]


def synthetic_state_dict(shapes: dict[str, list[int]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Deterministic weights for a state dict's names and shapes, at scales that keep a ResNet-18 in eval mode
    well-conditioned (He-scaled convs, BN statistics around 1, small biases). Numpy only: used by the test."""
    out = {}
    for i, name in enumerate(sorted(shapes)):
        shape = tuple(shapes[name])
        rng = np.random.default_rng([seed, i])
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = np.zeros(shape, np.int64)
            continue
        if leaf in ("running_var",) or (leaf == "weight" and len(shape) == 1):  # BN scales and variances
            v = rng.uniform(0.5, 1.5, shape)
        elif leaf == "running_mean" or leaf.startswith("bias"):
            v = 0.1 * rng.standard_normal(shape)
        elif name == "a":
            v = np.array([1.0, 10.0, 1.0, 1.0]) * rng.uniform(0.5, 1.5, shape)
        elif name == "normalization_layer.norm_s":
            v = np.full(shape, 4.0) * rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            v = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif "embedding" in name:
            v = rng.standard_normal(shape)
        else:  # Linear and LSTM matrices: (out, in)
            v = rng.standard_normal(shape) / np.sqrt(shape[1])
        out[name] = v.astype(np.float32)
    return out


def _scratch_copy(dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    for f in ("img_text_composition_models.py", "text_model.py", "torch_functions.py"):
        src = subprocess.run(["git", f"--git-dir={MIRROR}", "show", f"HEAD:{f}"], check=True, capture_output=True,
                             text=True).stdout
        src = src.replace(".cuda()", "").replace("resnet18(pretrained=True)", "resnet18(weights=None)")
        with open(os.path.join(dest, f), "w") as fh:
            fh.write(src)


def main() -> None:
    import PIL.Image
    import torch
    import torchvision

    scratch = "/tmp/tirg_official_scratch"
    _scratch_copy(scratch)
    sys.path.insert(0, scratch)
    import img_text_composition_models as official  # noqa: E402

    torch.manual_seed(0)
    rng = np.random.default_rng(SEED)
    images = rng.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    transform = torchvision.transforms.Compose([  # google/tirg main.py:66-70
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    x = torch.stack([transform(PIL.Image.fromarray(im)) for im in images])
    os.makedirs(HERE, exist_ok=True)
    np.savez(os.path.join(HERE, "inputs.npz"), images=images, texts=np.array(TEXTS), vocab_texts=np.array(VOCAB_TEXTS))
    shapes_all = {}
    for composition, cls in COMPOSITIONS.items():
        model = getattr(official, cls)(VOCAB_TEXTS, EMBED_DIM)
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        shapes_all[composition] = shapes
        sd = synthetic_state_dict(shapes)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
        model.eval()
        with torch.no_grad():
            img = model.extract_img_feature(x)
            txt = model.extract_text_feature(list(TEXTS))
            composed = model.compose_img_text(x, list(TEXTS))
            m = model.img_model
            h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            pooled = m.avgpool(m.layer4(m.layer3(m.layer2(m.layer1(h))))).flatten(1)
            out = dict(image=img, text=txt, composed=composed, composed_norm=model.normalization_layer(composed),
                       image_norm=model.normalization_layer(img), pooled=pooled)
        np.savez(os.path.join(HERE, f"{composition}.npz"), **{k: v.numpy().astype(np.float32) for k, v in out.items()})
        if composition == "tirg":
            vocab = dict(model.text_model.vocab.word2id)
            encoded = [model.text_model.vocab.encode_text(t) for t in TEXTS]
    with open(os.path.join(HERE, "state_dicts.json"), "w") as f:
        json.dump(shapes_all, f, indent=0, sort_keys=True)
    with open(os.path.join(HERE, "vocab.json"), "w") as f:
        json.dump({"word2id": vocab, "encoded_texts": encoded}, f, indent=0, sort_keys=True)
    print("wrote", sorted(os.listdir(HERE)))


if __name__ == "__main__":
    main()
