"""Dataset converters: raw files in their published layout -> TFRecord shards + info.json."""
