"""Anime faces with tags (deep_t2i / MLDS layouts): converter, fixture generator, colour check."""
