"""Anime faces with tags (deep_t2i / MLDS layouts): python -m datasets.anime.convert|generate|colour_check."""
