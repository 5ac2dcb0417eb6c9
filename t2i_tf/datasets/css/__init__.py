"""CSS (Vo et al. 2019, TIRG): the generator of CSS-compatible scenes and the raw -> TFRecord converter."""
