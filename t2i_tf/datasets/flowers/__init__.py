"""Oxford-102 Flowers with captions: converter to text-to-image TFRecords (see ``convert.py``)."""
