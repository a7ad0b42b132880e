"""BlazingText: Word2Vec (cbow, skipgram, batch_skipgram) and the fastText classifier (supervised)."""

from .estimator import BlazingText

__all__ = ["BlazingText"]
