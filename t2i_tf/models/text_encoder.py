"""LSTM sentence encoder over token ids (TIRG's text model).

Embedding + LSTM; the sentence feature is the LSTM output at the last real
(non-padding) token, then dropout and a linear layer.
"""

from __future__ import annotations

import keras
from keras import layers


class LSTMTextEncoder(keras.Model):
    """Token ids [N, T] (0 = padding) -> sentence features [N, out_dim]."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 512,
        hidden_dim: int = 512,
        out_dim: int = 512,
        dropout: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embedding = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
        # With a mask, a Keras LSTM returns the output at each sequence's last real step.
        self.lstm = layers.LSTM(hidden_dim, name="lstm")
        self.dropout = layers.Dropout(dropout)
        self.fc = layers.Dense(out_dim, name="fc")

    def call(self, token_ids, training=None):
        x = self.embedding(token_ids)
        mask = self.embedding.compute_mask(token_ids)
        h = self.lstm(x, mask=mask, training=training)
        return self.fc(self.dropout(h, training=training))
