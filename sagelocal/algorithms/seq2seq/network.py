"""Seq2Seq networks in torch, after Sockeye 1.x (which SageMaker's Seq2Seq is built on).

- Encoders: ``rnn`` (a bidirectional first layer, each direction ``rnn_num_hidden / 2``, then
  unidirectional layers, optional residual connections) and ``cnn`` (learned positions, gated
  convolutions with residual connections, Gehring et al.).
- Attention: ``mlp`` (Bahdanau/Luong concat), ``bilinear`` (Luong general), ``dot`` (projected to
  ``rnn_attention_num_hidden`` where sizes differ) and ``fixed`` (the last encoder state, no real
  attention, as Sockeye's ``EncoderLastStateAttention``).
- Decoders: ``rnn`` with input feeding: each step reads the previous word and the previous
  attentional hidden state ``tanh(W [rnn output; context])``; with ``rnn_attention_in_upper_layers``
  the first layer queries the attention and the upper layers also read the context (GNMT).
  ``cnn``: causal gated convolutions, each layer attending over the encoder states.

Every decoder exposes ``init_state(memory)``, ``step(prev_words, state, memory)`` returning
``(logits, attention, state)``, and ``reorder(state, index)`` for beam search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

_HALF_SQRT = math.sqrt(0.5)


def _activation(name: str):
    """The ``cnn_activation_type`` function; ``glu`` halves the channels (the conv outputs twice as many)."""
    return {"glu": lambda x: F.glu(x, dim=-1), "relu": F.relu, "softrelu": F.softplus,
            "sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


@dataclass
class Memory:
    """The encoded source: states (N, S, D), valid-position mask (N, S), lengths (N,), attention keys."""

    states: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    keys: torch.Tensor | None = None

    def repeat(self, times: int) -> Memory:
        """Each sentence repeated ``times`` times in a row (one copy per beam)."""
        rep = [t.repeat_interleave(times, dim=0) if t is not None else None
               for t in (self.states, self.mask, self.lengths, self.keys)]
        return Memory(*rep)


# ---------------------------------------------------------------------------------- encoders
class RNNEncoder(nn.Module):
    """Bidirectional first layer then ``layers - 1`` unidirectional ones (Sockeye's RNN encoder)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, cell: str, embed_dropout: float,
                 first_residual: int | None):
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.embed = nn.Embedding(vocab, embed)
        self.dropout = nn.Dropout(embed_dropout)
        self.bidirectional = rnn(embed, hidden // 2, batch_first=True, bidirectional=True)
        self.upper = nn.ModuleList(rnn(hidden, hidden, batch_first=True) for _ in range(layers - 1))
        self.first_residual = first_residual
        self.output_dim = hidden

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embed(src))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        x = pad_packed_sequence(self.bidirectional(packed)[0], batch_first=True, total_length=src.shape[1])[0]
        for number, layer in enumerate(self.upper, start=2):  # padding sits after each sentence: no packing needed
            y = layer(x)[0]
            x = y + x if self.first_residual is not None and number >= self.first_residual else y
        return x


class CNNEncoder(nn.Module):
    """Embeddings plus learned positions, projected, then gated convolutions with residuals."""

    def __init__(self, vocab: int, embed: int, max_len: int, hidden: int, layers: int, kernel: int,
                 activation: str, dropout: float, embed_dropout: float):
        super().__init__()
        self.embed, self.positions = nn.Embedding(vocab, embed), nn.Embedding(max_len, embed)
        self.embed_dropout, self.dropout = nn.Dropout(embed_dropout), nn.Dropout(dropout)
        self.project = nn.Linear(embed, hidden)
        width = 2 * hidden if activation == "glu" else hidden
        self.convs = nn.ModuleList(nn.Conv1d(hidden, width, kernel) for _ in range(layers))
        self.activation = _activation(activation)
        self.padding = ((kernel - 1) // 2, kernel // 2)
        self.output_dim = hidden

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = (torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None])[..., None]
        positions = torch.arange(src.shape[1], device=src.device)
        x = self.project(self.embed_dropout(self.embed(src) + self.positions(positions)[None]))
        for conv in self.convs:
            h = self.dropout(x).masked_fill(~valid, 0.0).transpose(1, 2)
            h = self.activation(conv(F.pad(h, self.padding)).transpose(1, 2))
            x = (h + x) * _HALF_SQRT
        return x.masked_fill(~valid, 0.0)


# --------------------------------------------------------------------------------- attention
class Attention(nn.Module):
    """Attention of one decoder query over the encoder states; ``keys`` precomputes what is per source."""

    def __init__(self, kind: str, query_dim: int, memory_dim: int, hidden: int):
        super().__init__()
        self.kind = kind
        if kind == "mlp":
            self.key_proj = nn.Linear(memory_dim, hidden, bias=False)
            self.query_proj = nn.Linear(query_dim, hidden)
            self.score = nn.Linear(hidden, 1, bias=False)
        elif kind == "dot":  # Sockeye projects a side only when its size differs from the attention size
            self.key_proj = nn.Linear(memory_dim, hidden, bias=False) if memory_dim != hidden else None
            self.query_proj = nn.Linear(query_dim, hidden, bias=False) if query_dim != hidden else None
        elif kind == "bilinear":
            self.query_proj = nn.Linear(query_dim, memory_dim, bias=False)

    def keys(self, states: torch.Tensor) -> torch.Tensor | None:
        """The projection of the encoder states the scores need for every query (None: the states)."""
        if self.kind == "mlp" or (self.kind == "dot" and self.key_proj is not None):
            return self.key_proj(states)
        return None

    def forward(self, query: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        """(context (N, D), attention probabilities (N, S))."""
        states = memory.states
        if self.kind == "fixed":
            last = (memory.lengths - 1).clamp(min=0)
            probs = F.one_hot(last, states.shape[1]).to(states.dtype)
            return states[torch.arange(states.shape[0], device=states.device), last], probs
        if self.kind == "mlp":
            hidden = torch.tanh(memory.keys + self.query_proj(query)[:, None, :])
            scores = self.score(hidden).squeeze(-1)
        else:
            keys = memory.keys if memory.keys is not None else states
            q = self.query_proj(query) if self.query_proj is not None else query
            scores = torch.bmm(keys, q[:, :, None]).squeeze(-1)
        probs = _masked_softmax(scores, memory.mask)
        return torch.bmm(probs[:, None, :], states).squeeze(1), probs


# ---------------------------------------------------------------------------------- decoders
class RNNDecoder(nn.Module):
    """Sockeye's recurrent decoder with input feeding and optional GNMT-style upper layers."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, cell: str, memory_dim: int,
                 attention: str, attention_hidden: int, in_upper_layers: bool, first_residual: int | None,
                 state_init: str, embed_dropout: float, hidden_dropout: float):
        super().__init__()
        self.lstm, self.hidden_size, self.state_init = cell == "lstm", hidden, state_init
        self.pre_layers = 1 if in_upper_layers and layers > 1 else layers
        cell_class = nn.LSTMCell if self.lstm else nn.GRUCell
        sizes = [embed + hidden] + [hidden if i < self.pre_layers else hidden + memory_dim for i in range(1, layers)]
        self.cells = nn.ModuleList(cell_class(size, hidden) for size in sizes)
        self.embed = nn.Embedding(vocab, embed)
        self.embed_dropout, self.hidden_dropout = nn.Dropout(embed_dropout), nn.Dropout(hidden_dropout)
        self.attention = Attention(attention, hidden, memory_dim, attention_hidden)
        self.hidden_fc = nn.Linear(hidden + memory_dim, hidden)
        self.output = nn.Linear(hidden, vocab)
        per_layer = 2 if self.lstm else 1
        self.init_fc = nn.ModuleList(nn.Linear(memory_dim, hidden) for _ in range(layers * per_layer)) \
            if state_init != "zero" else None
        self.first_residual = first_residual

    def init_state(self, memory: Memory) -> list[torch.Tensor]:
        """[previous attentional hidden state] + the (h[, c]) of every layer, from the encoder states."""
        n, states = memory.states.shape[0], memory.states
        zeros = states.new_zeros(n, self.hidden_size)
        if self.init_fc is None:
            return [zeros] * (1 + len(self.cells) * (2 if self.lstm else 1))
        if self.state_init == "last":
            summary = states[torch.arange(n, device=states.device), memory.lengths - 1]
        else:  # avg over the valid positions
            summary = (states * memory.mask[..., None]).sum(1) / memory.lengths[:, None].to(states.dtype)
        return [zeros] + [torch.tanh(fc(summary)) for fc in self.init_fc]

    def _layers(self, inputs: torch.Tensor, state: list[torch.Tensor], memory: Memory):
        per = 2 if self.lstm else 1
        new_state, out, context, probs = [], inputs, None, None
        for i, cell in enumerate(self.cells):
            if i == self.pre_layers:  # GNMT: the first layer queries, the upper layers also read the context
                context, probs = self.attention(out, memory)
            layer_in = torch.cat([out, context], dim=1) if i >= self.pre_layers else out
            carried = state[1 + per * i: 1 + per * (i + 1)]
            if self.lstm:
                h, c = cell(layer_in, (carried[0], carried[1]))
                new_state += [h, c]
            else:
                h = cell(layer_in, carried[0])
                new_state.append(h)
            residual = self.first_residual is not None and i >= 1 and i + 1 >= self.first_residual
            out = h + out if residual else h
        if context is None:
            context, probs = self.attention(out, memory)
        return out, context, probs, new_state

    def _step_hidden(self, word_vec: torch.Tensor, state: list[torch.Tensor], memory: Memory):
        out, context, probs, layer_state = self._layers(torch.cat([word_vec, state[0]], dim=1), state, memory)
        hidden = self.hidden_dropout(torch.tanh(self.hidden_fc(torch.cat([out, context], dim=1))))
        return hidden, probs, [hidden] + layer_state

    def forward(self, trg_in: torch.Tensor, memory: Memory) -> torch.Tensor:
        """Teacher-forced logits (N, T, V) for decoder inputs ``<s> y``."""
        words = self.embed_dropout(self.embed(trg_in))
        state, hiddens = self.init_state(memory), []
        for t in range(trg_in.shape[1]):
            hidden, _, state = self._step_hidden(words[:, t], state, memory)
            hiddens.append(hidden)
        return self.output(torch.stack(hiddens, dim=1))

    def step(self, prev: torch.Tensor, state: list[torch.Tensor], memory: Memory):
        hidden, probs, state = self._step_hidden(self.embed_dropout(self.embed(prev)), state, memory)
        return self.output(hidden), probs, state

    @staticmethod
    def reorder(state: list[torch.Tensor], index: torch.Tensor) -> list[torch.Tensor]:
        return [s.index_select(0, index) for s in state]


class CNNDecoder(nn.Module):
    """Causal gated convolutions over the target prefix, each layer attending over the source."""

    def __init__(self, vocab: int, embed: int, max_len: int, hidden: int, layers: int, kernel: int,
                 activation: str, dropout: float, embed_dropout: float, memory_dim: int):
        super().__init__()
        self.embed, self.positions = nn.Embedding(vocab, embed), nn.Embedding(max_len, embed)
        self.embed_dropout, self.dropout = nn.Dropout(embed_dropout), nn.Dropout(dropout)
        self.project = nn.Linear(embed, hidden)
        width = 2 * hidden if activation == "glu" else hidden
        self.convs = nn.ModuleList(nn.Conv1d(hidden, width, kernel) for _ in range(layers))
        self.queries = nn.ModuleList(nn.Linear(hidden, memory_dim) for _ in range(layers))
        self.contexts = nn.ModuleList(nn.Linear(memory_dim, hidden) for _ in range(layers))
        self.activation, self.kernel = _activation(activation), kernel
        self.output = nn.Linear(hidden, vocab)

    def _run(self, trg_in: torch.Tensor, memory: Memory) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(trg_in.shape[1], device=trg_in.device)
        x = self.project(self.embed_dropout(self.embed(trg_in) + self.positions(positions)[None]))
        probs = None
        for conv, query, context in zip(self.convs, self.queries, self.contexts):
            h = F.pad(self.dropout(x).transpose(1, 2), (self.kernel - 1, 0))  # causal: only earlier words
            h = self.activation(conv(h).transpose(1, 2))
            scores = torch.bmm(query(h), memory.states.transpose(1, 2))
            probs = _masked_softmax(scores, memory.mask[:, None, :])
            h = (h + context(torch.bmm(probs, memory.states))) * _HALF_SQRT
            x = (h + x) * _HALF_SQRT
        return self.output(x), probs

    def forward(self, trg_in: torch.Tensor, memory: Memory) -> torch.Tensor:
        return self._run(trg_in, memory)[0]

    def init_state(self, memory: Memory) -> list[torch.Tensor]:
        return [memory.states.new_zeros(memory.states.shape[0], 0, dtype=torch.long)]

    def step(self, prev: torch.Tensor, state: list[torch.Tensor], memory: Memory):
        # the whole prefix is recomputed each step: simple and exact (prefixes are short)
        prefix = torch.cat([state[0], prev[:, None]], dim=1)
        logits, probs = self._run(prefix, memory)
        return logits[:, -1], probs[:, -1], [prefix]

    @staticmethod
    def reorder(state: list[torch.Tensor], index: torch.Tensor) -> list[torch.Tensor]:
        return [s.index_select(0, index) for s in state]


# ------------------------------------------------------------------------------- the network
class Seq2SeqNet(nn.Module):
    """Encoder + decoder built from the resolved hyperparameters and the vocabulary sizes."""

    def __init__(self, hp: dict, source_vocab: int, target_vocab: int):
        super().__init__()
        residual = hp["rnn_first_residual_layer"] if hp["rnn_residual_connections"] else None
        if hp["encoder_type"] == "rnn":
            self.encoder = RNNEncoder(source_vocab, hp["num_embed_source"], hp["rnn_num_hidden"],
                                      hp["num_layers_encoder"], hp["rnn_cell_type"], hp["embed_dropout_source"],
                                      residual)
        else:
            self.encoder = CNNEncoder(source_vocab, hp["num_embed_source"], hp["max_seq_len_source"],
                                      hp["cnn_num_hidden"], hp["num_layers_encoder"], hp["cnn_kernel_width_encoder"],
                                      hp["cnn_activation_type"], hp["cnn_hidden_dropout"], hp["embed_dropout_source"])
        memory_dim = self.encoder.output_dim
        if hp["decoder_type"] == "rnn":
            self.decoder = RNNDecoder(
                target_vocab, hp["num_embed_target"], hp["rnn_num_hidden"], hp["num_layers_decoder"],
                hp["rnn_cell_type"], memory_dim, hp["rnn_attention_type"],
                hp["rnn_attention_num_hidden"] or hp["rnn_num_hidden"], hp["rnn_attention_in_upper_layers"],
                residual, hp["rnn_decoder_state_init"], hp["embed_dropout_target"], hp["rnn_decoder_hidden_dropout"])
        else:
            self.decoder = CNNDecoder(target_vocab, hp["num_embed_target"], hp["max_seq_len_target"] + 1,
                                      hp["cnn_num_hidden"], hp["num_layers_decoder"], hp["cnn_kernel_width_decoder"],
                                      hp["cnn_activation_type"], hp["cnn_hidden_dropout"], hp["embed_dropout_target"],
                                      memory_dim)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> Memory:
        states = self.encoder(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        attention = getattr(self.decoder, "attention", None)
        return Memory(states, mask, lengths, attention.keys(states) if attention is not None else None)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, trg_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (N, T, V)."""
        return self.decoder(trg_in, self.encode(src, lengths))


def initialize(net: nn.Module, kind: str, scale: float, factor_type: str, generator: torch.Generator) -> None:
    """MXNet's initializers as Sockeye uses them: biases zero, weights ``xavier`` or ``uniform``.

    MXNet's Xavier draws U(-s, s) with ``s = sqrt(scale / factor)``, the factor being fan-in, fan-out
    or their mean (``xavier_factor_type``), fans counting the kernel width; ``uniform`` draws
    U(-scale, scale).
    """
    with torch.no_grad():
        for param in net.parameters():
            if param.dim() < 2:
                param.zero_()
                continue
            if kind == "xavier":
                field = math.prod(param.shape[2:])
                fan_in, fan_out = param.shape[1] * field, param.shape[0] * field
                factor = {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2.0}[factor_type]
                bound = math.sqrt(abs(scale) / factor)
            else:
                bound = abs(scale)
            values = torch.rand(param.shape, generator=generator, dtype=torch.float32) * (2 * bound) - bound
            param.copy_(values.to(param.device))
