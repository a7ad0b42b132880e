"""DeepAR's network (Salinas et al., arXiv:1704.04110): a lagged, autoregressive LSTM stack.

At every step ``t`` the RNN reads the scaled target at the lags of ``t`` (``y[t - lag] / scale``, lag
1 being the previous value), the calendar, age and dynamic features of ``t``, an embedding of each
categorical feature and ``log(scale)``, and emits the parameters of the likelihood of ``y[t]``.

A window holds ``max_lag + context_length + prediction_length`` steps: the lag history, the context
(which also fixes the series scale: the mean absolute observed value) and the prediction range. In
training the RNN runs over context and prediction range with the true values (teacher forcing) and
the loss is the likelihood of every observed value there. To forecast, it runs over the context, then
draws each step from its distribution and feeds the draw back (ancestral sampling), for all sample
paths of all series at once.

Layers follow GluonTS's MXNet DeepAR, the lineage of SageMaker's: one LSTM per layer, residual
connections from the second layer on, and ``dropout_rate`` as zoneout on the recurrent states
(each hidden and cell unit keeps its previous value with that probability) during training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Windows
from .likelihoods import Likelihood

_MIN_SCALE = 1e-10


class DeepARNetwork(nn.Module):
    """The network; see the module docstring.

    Parameters
    ----------
    lags : lag steps (1 = previous value).
    num_features : time features + dynamic features per step.
    cardinality : categories per cat feature (empty: no embeddings).
    embedding_dimension, num_cells, num_layers, dropout_rate : SageMaker's hyperparameters.
    likelihood : a :class:`~.likelihoods.Likelihood`.
    """

    def __init__(self, *, lags: list[int], num_features: int, cardinality: list[int], embedding_dimension: int,
                 num_cells: int, num_layers: int, dropout_rate: float, likelihood: Likelihood):
        super().__init__()
        self.register_buffer("lags", torch.tensor(lags, dtype=torch.long), persistent=False)
        self.max_lag = max(lags)
        self.likelihood = likelihood
        self.dropout_rate = dropout_rate
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dimension) for c in cardinality)
        input_size = len(lags) + num_features + len(cardinality) * embedding_dimension + 1
        self.layers = nn.ModuleList(
            nn.LSTM(input_size if k == 0 else num_cells, num_cells, batch_first=True) for k in range(num_layers))
        self.head = nn.Linear(num_cells, likelihood.num_params)

    # ------------------------------------------------------------------------------ pieces
    def scale(self, windows: Windows, context_length: int, default_scale: float) -> Tensor:
        """Per-window scale: mean |observed value| over the context; ``default_scale`` without any."""
        if not self.likelihood.scaled:
            return torch.ones(windows.target.shape[0], device=windows.target.device)
        start = self.max_lag
        target = windows.target[:, start:start + context_length]
        observed = windows.observed[:, start:start + context_length]
        count = observed.sum(1)
        mean = (target.abs() * observed).sum(1) / count.clamp(min=1.0)
        usable = (count > 0) & (mean > 0)
        return torch.where(usable, mean, torch.full_like(mean, default_scale)).clamp(min=_MIN_SCALE)

    def static(self, cat: Tensor, scale: Tensor) -> Tensor:
        """Embeddings of the cat features and log(scale): (B, E)."""
        parts = [embedding(cat[:, k]) for k, embedding in enumerate(self.embeddings)]
        parts.append(torch.log(scale)[:, None])
        return torch.cat(parts, dim=1)

    def inputs(self, scaled: Tensor, features: Tensor, static: Tensor, start: int, stop: int) -> Tensor:
        """RNN inputs of window steps ``start:stop``: lagged values, features, static part."""
        steps = torch.arange(start, stop, device=scaled.device)
        lagged = scaled[:, steps[:, None] - self.lags[None, :]]
        expanded = static[:, None, :].expand(-1, stop - start, -1)
        return torch.cat([lagged, features[:, start:stop], expanded], dim=2)

    def rnn(self, x: Tensor, states: list | None = None) -> tuple[Tensor, list]:
        """Run the layer stack over ``x`` (B, T, in); returns outputs (B, T, H) and each layer's state."""
        new_states = []
        for k, layer in enumerate(self.layers):
            state = None if states is None else states[k]
            if self.training and self.dropout_rate > 0:
                out, state = _zoneout_lstm(layer, x, self.dropout_rate)
            else:
                out, state = layer(x, state)
            x = out if k == 0 else out + x  # residual connections from the second layer on
            new_states.append(state)
        return x, new_states

    # ---------------------------------------------------------------------------- training
    def loss(self, windows: Windows, context_length: int, default_scale: float) -> tuple[Tensor, Tensor]:
        """Sum of the per-step losses over observed steps of context and prediction range, and their count."""
        scale = self.scale(windows, context_length, default_scale)
        scaled = windows.target / scale[:, None]
        start, stop = self.max_lag, windows.target.shape[1]
        x = self.inputs(scaled, windows.features, self.static(windows.cat, scale), start, stop)
        out, _ = self.rnn(x)
        raw = self.head(out)
        nll = self.likelihood.nll(raw, windows.target[:, start:], scale[:, None])
        observed = windows.observed[:, start:]
        return (nll * observed).sum(), observed.sum()

    # --------------------------------------------------------------------------- forecasting
    @torch.no_grad()
    def sample(self, windows: Windows, context_length: int, prediction_length: int, num_samples: int,
               default_scale: float) -> Tensor:
        """Sample paths (B, num_samples, prediction_length) continuing each window's context."""
        scale = self.scale(windows, context_length, default_scale)
        scaled = windows.target / scale[:, None]
        static = self.static(windows.cat, scale)
        begin = self.max_lag + context_length
        _, states = self.rnn(self.inputs(scaled, windows.features, static, self.max_lag, begin))
        scaled, static, scale, future = (t.repeat_interleave(num_samples, dim=0)
                                         for t in (scaled, static, scale, windows.features[:, begin:]))
        states = [(h.repeat_interleave(num_samples, dim=1), c.repeat_interleave(num_samples, dim=1))
                  for h, c in states]
        draws = []
        for k in range(prediction_length):
            step = begin + k
            x = torch.cat([scaled[:, step - self.lags], future[:, k], static], dim=1)[:, None, :]
            out, states = self.rnn(x, states)
            draw = self.likelihood.sample(self.head(out[:, 0]), scale)
            scaled[:, step] = draw / scale
            draws.append(draw)
        return torch.stack(draws, dim=1).view(-1, num_samples, prediction_length)


def _zoneout_lstm(layer: nn.LSTM, x: Tensor, rate: float) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One LSTM layer with zoneout (Krueger et al., 2016) on its hidden and cell states.

    The same weights and gate order (i, f, g, o) as ``nn.LSTM``, stepped in a loop because the fused
    kernel cannot keep a random subset of units at their previous values. The output at each step is
    the fresh hidden state (MXNet's ZoneoutCell with zoneout on the states only). The input projection
    runs for all steps at once under autograd; the recurrence is :class:`_ZoneoutRecurrence`.
    """
    batch, steps, _ = x.shape
    projected = F.linear(x, layer.weight_ih_l0, layer.bias_ih_l0 + layer.bias_hh_l0).transpose(0, 1).contiguous()
    keep = torch.rand(2, steps, batch, layer.hidden_size, device=x.device).to(x.dtype)
    torch.lt(keep, rate, out=keep)  # the 0/1 masks in place of the uniforms (no bool temporary)
    outputs, h, c = _ZoneoutRecurrence.apply(projected, layer.weight_hh_l0, keep)
    return outputs.transpose(0, 1), (h[None], c[None])


class _ZoneoutRecurrence(torch.autograd.Function):
    """The LSTM recurrence with zoneout masks, with a hand-written backward pass through time.

    Autograd over a Python loop records ~10 nodes per step and spends most of its time in the graph
    engine; this function keeps the per-step work to a few fused tensor operations each way and
    computes every elementwise derivative factor for all steps at once. Inputs are time-major:
    ``projected`` (T, B, 4H) = x W_ih^T + b, ``keep`` (2, T, B, H) = 1 where h (row 0) or c (row 1)
    keeps its previous value. Returns the outputs (T, B, H) and the final zoned-out h and c.
    """

    @staticmethod
    def forward(ctx, projected: Tensor, weight_hh: Tensor, keep: Tensor):
        steps, batch, four_h = projected.shape
        hidden = four_h // 4
        # Every step writes into preallocated buffers (out=), so nothing is stacked afterwards, and the
        # per-step views are made up front by unbind (indexing in the loop costs as much as the maths).
        acts = projected.new_empty(steps, batch, four_h)  # sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        tanh_cells = projected.new_empty(steps, batch, hidden)
        outputs = projected.new_empty(steps, batch, hidden)
        hiddens = projected.new_zeros(steps + 1, batch, hidden)  # the (zoned-out) state before each step
        cells = projected.new_zeros(steps + 1, batch, hidden)
        i, f, g, o = (part.unbind(0) for part in acts.split(hidden, dim=2))
        views = zip(projected.unbind(0), acts.unbind(0), g, i, f, o, tanh_cells.unbind(0), outputs.unbind(0),
                    hiddens[:-1].unbind(0), hiddens[1:].unbind(0), cells[:-1].unbind(0), cells[1:].unbind(0),
                    keep[0].unbind(0), keep[1].unbind(0))
        weight = weight_hh.t()
        for proj, act, g_t, i_t, f_t, o_t, tanh_c, out, h, h_next, c, c_next, keep_h, keep_c in views:
            gates = torch.addmm(proj, h, weight)
            torch.sigmoid(gates, out=act)
            torch.tanh(gates[:, 2 * hidden:3 * hidden], out=g_t)
            c_new = torch.addcmul(f_t * c, i_t, g_t)
            torch.tanh(c_new, out=tanh_c)
            torch.mul(o_t, tanh_c, out=out)
            torch.lerp(out, h, keep_h, out=h_next)
            torch.lerp(c_new, c, keep_c, out=c_next)
        ctx.save_for_backward(weight_hh, keep, acts, cells, hiddens, tanh_cells)
        return outputs, hiddens[-1], cells[-1]

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h: Tensor, grad_c: Tensor):
        weight_hh, keep, acts, cells, hiddens, tanh_cells = ctx.saved_tensors
        hidden = weight_hh.shape[1]
        cells, hiddens = cells[:-1], hiddens[:-1]
        i, f, g, o = acts.split(hidden, dim=2)
        # d c_new per unit of d h_new, and d gates (pre-activation) per unit of d c_new (i, f, g) or of
        # d h_new (o), for all steps at once: only the recurrence itself is stepped
        through_h = torch.mul(tanh_cells, tanh_cells).neg_().add_(1).mul_(o)
        # the activations' slopes, built in place in grad_gates (which the loop overwrites): fresh large
        # temporaries cost page faults each batch; same operations and rounding as acts * (1 - acts)
        grad_gates = torch.sub(1, acts).mul_(acts)
        torch.mul(g, g, out=grad_gates[:, :, 2 * hidden:3 * hidden]).neg_().add_(1)
        steps, batch = acts.shape[:2]
        by_gate = grad_gates.view(steps, batch, 4, hidden)
        for k, factor in enumerate((g, cells, i, tanh_cells)):  # times d c_new / d gate (d h_new for o)
            by_gate[:, :, k].mul_(factor)
        grad_ifg, grad_o = by_gate.split([3, 1], dim=2)  # factors now; each step scales its row in place
        released = 1 - keep
        dh = grad_h.clone() if grad_h is not None else grad_outputs.new_zeros(grad_outputs.shape[1:])
        dc = grad_c.clone() if grad_c is not None else grad_outputs.new_zeros(grad_outputs.shape[1:])
        views = zip(grad_outputs.unbind(0), released[0].unbind(0), released[1].unbind(0), keep[0].unbind(0),
                    keep[1].unbind(0), through_h.unbind(0), f.unbind(0), grad_gates.unbind(0), grad_ifg.unbind(0),
                    grad_o.unbind(0))
        for grad_out, free_h, free_c, keep_h, keep_c, through, f_t, grad, grad_ifg_t, grad_o_t in reversed(list(views)):
            dh_new = torch.addcmul(grad_out, free_h, dh)
            dc_new = torch.addcmul(free_c * dc, dh_new, through)
            grad_ifg_t.mul_(dc_new[:, None, :])  # d gates i, f, g
            grad_o_t.mul_(dh_new[:, None, :])  # d gate o
            dc = torch.addcmul(keep_c * dc, dc_new, f_t)
            dh = torch.addmm(keep_h * dh, grad, weight_hh)
        grad_weight = grad_gates.flatten(0, 1).t() @ hiddens.flatten(0, 1)
        return grad_gates, grad_weight, None
