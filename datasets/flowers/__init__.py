"""Oxford-102 Flowers + captions: python -m datasets.flowers.convert."""
