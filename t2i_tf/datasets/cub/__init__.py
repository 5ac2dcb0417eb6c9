"""CUB-200-2011 birds with captions: converter to text-to-image TFRecords (see ``convert.py``)."""
