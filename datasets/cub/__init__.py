"""CUB-200-2011 + captions: python -m datasets.cub.convert."""
