"""Writes the committed ``.pth`` fixtures of test_pth.py with the installed PyTorch (needs torch; run once).

    python tests/import_torch/make_pth_fixtures.py

Made with torch 2.14.1 (CPU): each object is saved in the zip layout (``*_zip.pth``) and the legacy layout
(``*_legacy.pth``, ``_use_new_zipfile_serialization=False``); ``expected.npz`` holds every tensor as numpy
(bfloat16 widened to float32), keyed ``state/<name>`` and ``tirg/<name>``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pth")


def state_dict() -> dict:
    """A module's state dict (an OrderedDict with ``_metadata``) plus views, shared storage and every dtype."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(torch.randn(5, 3))  # running stats and num_batches_tracked (an int64 0-d tensor) move
    sd = model.state_dict()
    sd["view.transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    sd["view.sliced"] = torch.arange(30, dtype=torch.float64).reshape(5, 6)[1:4, ::2]
    sd["view.expanded"] = torch.tensor([[1.0, 2.0, 3.0]]).expand(4, 3)
    shared = torch.randn(8)
    sd["shared.a"] = shared[:4]
    sd["shared.b"] = shared.view(2, 4)[1]
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(2.5)
    sd["dtype.float16"] = torch.randn(2, 3).half()
    sd["dtype.bfloat16"] = torch.randn(2, 3).bfloat16()
    sd["dtype.int64"] = torch.tensor([-(2**40), 0, 2**40])
    sd["dtype.int32"] = torch.tensor([-7, 0, 7], dtype=torch.int32)
    sd["dtype.int16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["dtype.int8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["dtype.uint8"] = torch.tensor([0, 255], dtype=torch.uint8)
    sd["dtype.bool"] = torch.tensor([True, False, True])
    sd["dtype.uint16"] = torch.tensor([1, 65535], dtype=torch.uint16)  # written with _rebuild_tensor_v3
    return sd


def tirg_checkpoint() -> dict:
    """The structure TIRG's main.py saves: ``{'it', 'opt' (argparse.Namespace), 'model_state_dict'}``."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = argparse.Namespace(dataset="css3d", model="tirg", loss="soft_triplet", learning_rate=0.01,
                             batch_size=32, embed_dim=512, use_complete_text_query=False, comment="")
    return {"it": 7, "opt": opt, "model_state_dict": model.state_dict()}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    for prefix, sd in (("state", state_dict()), ("tirg", tirg_checkpoint()["model_state_dict"])):
        for k, v in sd.items():
            expected[f"{prefix}/{k}"] = (v.float() if v.dtype == torch.bfloat16 else v).numpy()
    np.savez(os.path.join(OUT, "expected.npz"), **expected)
    torch.manual_seed(2)
    for name, obj in (("state", state_dict()), ("tirg", tirg_checkpoint()), ("linear_module", nn.Linear(2, 2))):
        torch.save(obj, os.path.join(OUT, f"{name}_zip.pth"))
        torch.save(obj, os.path.join(OUT, f"{name}_legacy.pth"), _use_new_zipfile_serialization=False)
    for f in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, f)):8d}  {f}")


if __name__ == "__main__":
    main()
