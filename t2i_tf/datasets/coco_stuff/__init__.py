"""COCO 2017 + COCO-Stuff scene graphs for sg2im: python -m datasets.coco_stuff.convert."""
