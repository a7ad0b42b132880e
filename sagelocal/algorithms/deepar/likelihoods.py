"""DeepAR's output distributions, one class per ``likelihood`` choice.

Each maps the RNN's projected outputs (``num_params`` per step, unconstrained) and the series scale to
a distribution over the target. Location-scale families (gaussian, student-T) model the scaled target
``y / scale`` and add ``log(scale)`` to the negative log-likelihood, so the reported loss is the NLL of
``y`` itself. The negative binomial scales its mean by ``scale`` and its shape by ``1 / sqrt(scale)``
(GluonTS's parametrisation, which keeps the variance-to-mean structure under scaling). The beta
distribution models values in (0, 1) unscaled. deterministic-L1 emits one value per step and is
trained with the absolute error of the scaled target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_EPS = 1e-6


def _positive(raw: Tensor) -> Tensor:
    return F.softplus(raw) + _EPS


class Likelihood:
    """Base: ``nll(raw, y, scale)`` and ``sample(raw, scale)``; ``raw`` is (..., num_params)."""

    name = ""
    num_params = 2
    #: Whether the target is divided by the series scale before the network reads it.
    scaled = True
    #: Whether the loss is a true negative log-likelihood (False: deterministic-L1's absolute error).
    probabilistic = True

    def nll(self, raw: Tensor, y: Tensor, scale: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, raw: Tensor, scale: Tensor) -> Tensor:
        """One draw per position, in the target's units."""
        raise NotImplementedError

    def check_targets(self, values) -> str | None:
        """Why ``values`` (observed targets, numpy) cannot come from this distribution, or None."""
        return None


class Gaussian(Likelihood):
    """Normal(mu, sigma) of the scaled target."""

    name = "gaussian"

    def nll(self, raw, y, scale):
        mu, sigma = raw[..., 0], _positive(raw[..., 1])
        z = (y / scale - mu) / sigma
        return 0.5 * z * z + torch.log(sigma) + 0.5 * math.log(2 * math.pi) + torch.log(scale)

    def sample(self, raw, scale):
        mu, sigma = raw[..., 0], _positive(raw[..., 1])
        return (mu + sigma * torch.randn_like(mu)) * scale


class StudentT(Likelihood):
    """Student's t(nu > 2, mu, sigma) of the scaled target (SageMaker's default)."""

    name = "student-T"
    num_params = 3

    @staticmethod
    def _params(raw):
        return raw[..., 0], _positive(raw[..., 1]), 2.0 + F.softplus(raw[..., 2])

    def nll(self, raw, y, scale):
        mu, sigma, nu = self._params(raw)
        z = (y / scale - mu) / sigma
        half = 0.5 * (nu + 1.0)
        return (torch.lgamma(0.5 * nu) - torch.lgamma(half) + 0.5 * torch.log(nu * math.pi) + torch.log(sigma)
                + half * torch.log1p(z * z / nu) + torch.log(scale))

    def sample(self, raw, scale):
        mu, sigma, nu = self._params(raw)
        return torch.distributions.StudentT(nu, mu, sigma).sample() * scale


class NegativeBinomial(Likelihood):
    """Negative binomial of mean mu * scale and shape alpha / sqrt(scale), for counts."""

    name = "negative-binomial"

    @staticmethod
    def _params(raw, scale):
        mu = _positive(raw[..., 0]) * scale
        alpha = _positive(raw[..., 1]) / torch.sqrt(scale)
        return mu, alpha

    def nll(self, raw, y, scale):
        mu, alpha = self._params(raw, scale)
        r = 1.0 / alpha
        return -(torch.lgamma(y + r) - torch.lgamma(y + 1.0) - torch.lgamma(r)
                 + r * torch.log(r / (r + mu)) + y * torch.log(mu / (r + mu)))

    def sample(self, raw, scale):
        mu, alpha = self._params(raw, scale)
        r = 1.0 / alpha
        rate = torch.distributions.Gamma(r, r / mu).sample()  # Gamma-Poisson mixture
        return torch.poisson(rate)

    def check_targets(self, values):
        bad = values[values < 0]  # counts; non-integers are allowed, as the continuous lgamma form permits
        return None if bad.size == 0 else f"non-negative counts; got {float(bad[0])!r}"


class Beta(Likelihood):
    """Beta(a, b) of the unscaled target in [0, 1]."""

    name = "beta"
    scaled = False

    @staticmethod
    def _params(raw):
        return _positive(raw[..., 0]), _positive(raw[..., 1])

    def nll(self, raw, y, scale):
        a, b = self._params(raw)
        y = y.clamp(1e-5, 1 - 1e-5)  # the density is 0 or infinite at the ends
        return -((a - 1) * torch.log(y) + (b - 1) * torch.log1p(-y)
                 + torch.lgamma(a + b) - torch.lgamma(a) - torch.lgamma(b))

    def sample(self, raw, scale):
        a, b = self._params(raw)
        return torch.distributions.Beta(a, b).sample()

    def check_targets(self, values):
        bad = values[(values < 0) | (values > 1)]
        return None if bad.size == 0 else f"values in [0, 1]; got {float(bad[0])!r}"


class DeterministicL1(Likelihood):
    """A point forecast trained with the absolute error; every sample path is the same."""

    name = "deterministic-L1"
    num_params = 1
    probabilistic = False

    def nll(self, raw, y, scale):
        return torch.abs(y / scale - raw[..., 0])

    def sample(self, raw, scale):
        return raw[..., 0] * scale


LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Gaussian, StudentT, NegativeBinomial, Beta, DeterministicL1)}
