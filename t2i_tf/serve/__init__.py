"""The web demo: serve one SavedModel export (``python main.py --model=X --mode=serve`` or
``python -m t2i_tf.serve --export_dir=DIR``)."""
