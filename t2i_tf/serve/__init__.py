"""The web demo: serve SavedModel exports, a page per task over a JSON API (``python main.py --model=X
--mode=serve`` or ``python -m t2i_tf.serve --export_dir=DIR [--export_dir=DIR2 ...]``; docs/demo.md)."""
