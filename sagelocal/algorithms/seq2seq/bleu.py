"""Corpus BLEU on a 0-1 scale, as Sockeye reports it during training.

Sockeye computes validation BLEU with sacrebleu's ``raw_corpus_bleu``: no tokenisation (tokens are
the whitespace-separated words, here also token ids), one reference per sentence, n-grams up to 4,
``floor`` smoothing (an order without matches counts ``0.01`` matches) and the effective order (orders
that no hypothesis is long enough to have are left out). Implemented here so that training needs no
extra package; the tests hold it against sacrebleu itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

MAX_ORDER = 4
SMOOTH_VALUE = 0.01


def _ngrams(tokens: Sequence[Hashable], order: int) -> Counter:
    return Counter(tuple(tokens[i:i + order]) for i in range(len(tokens) - order + 1))


def corpus_bleu_tokens(hypotheses: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Hashable]], *,
                       max_order: int = MAX_ORDER, smooth_value: float = SMOOTH_VALUE) -> float:
    """BLEU (0-1) of tokenised hypotheses against one tokenised reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    correct, total = [0] * max_order, [0] * max_order
    sys_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        sys_len += len(hyp)
        ref_len += len(ref)
        for n in range(1, max_order + 1):
            hyp_grams = _ngrams(hyp, n)
            ref_grams = _ngrams(ref, n)
            correct[n - 1] += sum(min(c, ref_grams[g]) for g, c in hyp_grams.items())
            total[n - 1] += max(len(hyp) - n + 1, 0)
    if sys_len == 0 or not any(correct):  # no match at all: 0, not a smoothed score
        return 0.0
    log_sum, order = 0.0, 0
    for n in range(max_order):
        if total[n] == 0:
            break
        order = n + 1
        matches = correct[n] if correct[n] > 0 else smooth_value
        log_sum += math.log(matches / total[n])
    bp = 1.0 if sys_len >= ref_len else math.exp(1.0 - ref_len / sys_len)
    return bp * math.exp(log_sum / order)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], **kwargs) -> float:
    """BLEU (0-1) of sentences against one reference sentence each, split on whitespace."""
    return corpus_bleu_tokens([h.split() for h in hypotheses], [r.split() for r in references], **kwargs)
