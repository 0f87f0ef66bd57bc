"""scikit-learn estimators on the deltaprop engine: ``MLPClassifier`` and ``MLPRegressor``.

- :mod:`deltaprop.estimators.mlp`: the two estimators (scikit-learn's interface, deltaprop's extras);
- :mod:`deltaprop.estimators.sklearn_ways`: what they take over from scikit-learn's MLP so that one
  ``random_state`` gives its numbers (random draws in order, L-BFGS, end-of-epoch bookkeeping);
- :mod:`deltaprop.estimators.inputs`: checks of settings and X, and ``coefs_`` as views.

The only room of deltaprop that imports scikit-learn (and, through it, SciPy). Imports point one way:
estimators → engine.
"""

from deltaprop.estimators.mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
