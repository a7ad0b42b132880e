"""Seq2Seq (SageMaker's ``seq2seq`` image): estimator, data tool, beam search and BLEU."""

from .bleu import corpus_bleu, corpus_bleu_tokens
from .data import build_vocab, encode_pair, prepare, read_pairs, read_vocab, write_pairs, write_vocab
from .estimator import Seq2Seq

__all__ = ["Seq2Seq", "build_vocab", "corpus_bleu", "corpus_bleu_tokens", "encode_pair", "prepare", "read_pairs",
           "read_vocab", "write_pairs", "write_vocab"]
