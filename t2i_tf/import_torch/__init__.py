"""Official PyTorch checkpoints -> t2i_tf run directories.

``pth`` reads ``.pth`` files without PyTorch (a restricted unpickler that only rebuilds tensor storages and
plain containers); one module per model family maps the official state dict onto the Keras model.
"""
