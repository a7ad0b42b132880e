"""``python -m sagelocal.algorithms.seq2seq``: the data tool (vocabularies and RecordIO from parallel text)."""

import sys

from .data import main

sys.exit(main())
