"""scikit-learn in: a fitted ``MLPClassifier``/``MLPRegressor`` (scikit-learn's or deltaprop's) as a Network.

scikit-learn stores ``coefs_[l]`` as (n_{l−1}, n_l) and computes A_prev · coef + intercept; deltaprop
stores W_l = coefs_[l]ᵀ, (n_l, n_{l−1}), and computes Z = A_prev W_lᵀ + b_l: the same numbers.
Its activation names map onto deltaprop's (``logistic`` is sigmoid); its output layer (softmax for
several classes, one logistic unit for two, logistic units for multi-label, identity for regression)
is deltaprop's, and so is the loss that pairs with it (log-loss is cross-entropy). A ``Pipeline``
whose steps before the MLP are a ``StandardScaler`` or a ``MinMaxScaler`` (range [0, 1]) keeps that
scaling as the model's input scaling, so ``deltaprop predict`` takes the pipeline's raw inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop.activations import canonical_name
from deltaprop.errors import ConfigError
from deltaprop.io.exchange.common import assemble, scaler_dict

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

    from deltaprop.model import Network

__all__ = ["from_sklearn"]

_SUPPORTED = (
    "sklearn.neural_network.MLPClassifier, MLPRegressor, deltaprop.MLPClassifier, MLPRegressor, "
    "or a Pipeline of StandardScaler/MinMaxScaler steps ending in one of them"
)


def from_sklearn(est: BaseEstimator) -> Network:
    """A Network with the weights, activations, output layer, loss and classes of a fitted estimator.

    ``net.meta`` gets ``task``, ``classes`` (classifiers), ``feature_names`` (when the estimator saw
    them), the input scaling of a Pipeline's scaler, and ``source`` (the estimator and its ``alpha``,
    the L2 strength λ scikit-learn trained with).
    """
    scaler = None
    # A Pipeline saw the DataFrame's column names, its MLP step only the scaler's array: the names are
    # the pipeline's (without them, a CSV with its columns in another order would be read silently).
    names = getattr(est, "feature_names_in_", None)
    steps = getattr(est, "steps", None)
    if steps is not None and isinstance(steps, list):
        *before, (_, est) = steps
        scaler = _pipeline_scaling(before, _n_features(est))
        names = names if names is not None else getattr(est, "feature_names_in_", None)
    kind = type(est).__name__
    if type(est).__module__.startswith("deltaprop") and hasattr(est, "to_network"):
        net = est.to_network()
        source = {"format": "deltaprop estimator", "estimator": kind, "alpha": float(est.alpha)}
        if names is not None:
            net.meta["feature_names"] = [str(n) for n in names]
        return assemble(
            net.get_weights(),
            net.activations,
            classes=net.meta.get("classes"),
            scaler=scaler,
            meta=net.meta,
            source=source,
            what=f"the {kind}",
        )
    if not (hasattr(est, "coefs_") and hasattr(est, "intercepts_") and hasattr(est, "out_activation_")):
        fitted = "" if kind not in ("MLPClassifier", "MLPRegressor") else " (has it been fitted?)"
        raise ConfigError(
            f"cannot read a {kind} as a network{fitted}", f"from_sklearn takes a fitted {_SUPPORTED}"
        )
    hidden = canonical_name(est.activation)
    output = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity", "exp": "exp"}.get(
        est.out_activation_
    )
    if output is None:
        raise ConfigError(
            f"this {kind} has output activation {est.out_activation_!r} (loss "
            f"{getattr(est, 'loss', '?')!r}), which deltaprop does not pair with a loss",
            "deltaprop reads softmax, logistic, identity and exp outputs (loss 'squared_error' or 'poisson' for a "
            "regressor)",
        )
    weights = [(np.array(c).T.copy(), np.array(b).copy()) for c, b in zip(est.coefs_, est.intercepts_)]
    activations = [hidden] * (len(weights) - 1) + [output]
    meta = {}
    if names is not None:
        meta["feature_names"] = [str(n) for n in names]
    classes = getattr(est, "classes_", None)
    source = {
        "format": "scikit-learn",
        "estimator": f"{type(est).__module__.split('.')[0]}.{kind}",
        "alpha": float(est.alpha),
    }
    return assemble(
        weights,
        activations,
        classes=None if classes is None else list(classes),
        scaler=scaler,
        meta=meta,
        source=source,
        what=f"the {kind}",
    )


def _n_features(est) -> int | None:
    n = getattr(est, "n_features_in_", None)
    return int(n) if n is not None else None


def _pipeline_scaling(steps, n_features) -> dict | None:
    """The input scaling of a Pipeline's steps before the MLP, as a Scaler description."""
    if not steps:
        return None
    if len(steps) > 1:
        raise ConfigError(
            f"the Pipeline has {len(steps)} steps before the network "
            f"({', '.join(type(s).__name__ for _, s in steps)}); deltaprop keeps one input scaling",
            "use one StandardScaler or MinMaxScaler before the MLP",
        )
    name, step = steps[0]
    kind = type(step).__name__
    if step in (None, "passthrough"):
        return None
    if kind == "StandardScaler":
        mean = getattr(step, "mean_", None) if step.with_mean else None
        scale = getattr(step, "scale_", None) if step.with_std else None
        n = int(step.n_features_in_)
        return scaler_dict(mean, scale, n, "standard")
    if kind == "MinMaxScaler":
        if tuple(step.feature_range) != (0, 1) or getattr(step, "clip", False):
            raise ConfigError(
                f"the MinMaxScaler maps to {tuple(step.feature_range)}"
                f"{' with clip=True' if step.clip else ''}; deltaprop's minmax scaling maps to [0, 1] "
                "without clipping",
                "use MinMaxScaler() with its defaults",
            )
        rng = np.where(
            step.data_range_ > 0, step.data_range_, 1.0
        )  # what scikit-learn does with a constant column
        return scaler_dict(step.data_min_, rng, int(step.n_features_in_), "minmax")
    raise ConfigError(
        f"the Pipeline step {name!r} is a {kind}, which deltaprop cannot store as input scaling",
        "deltaprop keeps a StandardScaler or a MinMaxScaler (range [0, 1]) before the MLP",
    )
