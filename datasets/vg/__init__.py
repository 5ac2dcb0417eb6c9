"""Visual Genome scene graphs for sg2im: python -m datasets.vg.convert."""
