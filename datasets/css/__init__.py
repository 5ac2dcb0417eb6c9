"""CSS: python -m datasets.css.generate | convert | captions."""
