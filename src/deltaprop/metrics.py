"""How good are the predictions: accuracy, confusion matrix, precision/recall/F1, log loss, MSE, R².

NumPy only. Labels are class indices 0..K−1 (``datasets.encode_labels`` makes them); rows are
examples. The definitions, for m examples and K classes:

    accuracy        = (1/m) Σ_i 1{ŷ_i = y_i}
    C[j, k]         = #{i : y_i = j, ŷ_i = k}            rows: true class, columns: predicted class
    precision_k     = C[k, k] / Σ_j C[j, k]               (0 when class k is never predicted)
    recall_k        = C[k, k] / Σ_j C[k, j]               (0 when class k never occurs)
    F1_k            = 2 C[k, k] / (Σ_j C[j, k] + Σ_j C[k, j])
    log loss        = −(1/m) Σ_i Σ_k y_ik log p_ik        (p clipped to [1e-15, 1])
    MSE             = (1/(m n)) Σ_i Σ_k (y_ik − ŷ_ik)²
    R²_k            = 1 − Σ_i (y_ik − ŷ_ik)² / Σ_i (y_ik − ȳ_k)²,   R² = mean over outputs k
    MAE             = (1/(m n)) Σ_i Σ_k |y_ik − ŷ_ik|,    RMSE = √MSE
    ROC-AUC         = P(score of a random positive > score of a random negative), ties counting ½
    average precision = Σ_n (R_n − R_{n−1}) P_n over the thresholds n at the distinct scores, high first

These agree with scikit-learn's functions of the same names (with ``zero_division=0`` for
precision, recall and F1, and ``labels=range(K)``); the tests compare them.
"""

from __future__ import annotations

import numpy as np

from deltaprop.errors import InputError

__all__ = ["accuracy", "confusion_matrix", "per_class", "log_loss", "mean_squared_error",
           "mean_absolute_error",
           "r2_score", "regression_summary", "roc_curve", "roc_auc_score", "average_precision_score",
           "classification_summary"]

LOG_EPS = 1e-15  # log loss clips probabilities here: one confidently wrong example costs ≈ 34.5, not ∞


# -- checks --------------------------------------------------------------------------------------------

def _pair(y_true, y_pred, what: str = "labels"):
    """y_true, y_pred as arrays with the same number of rows, at least one."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == 0 or y_pred.ndim == 0:
        raise InputError(f"{what} must be arrays, got a scalar", "pass one value per example")
    if y_true.shape[0] != y_pred.shape[0]:
        raise InputError(f"y_true has {y_true.shape[0]} rows but y_pred has {y_pred.shape[0]}",
                         "pass one prediction per example")
    if y_true.shape[0] == 0:
        raise InputError(f"no examples: the {what} are empty", "pass at least one example")
    return y_true, y_pred


def _labels(y, name: str) -> np.ndarray:
    """y as a 1-d int64 array of class indices ≥ 0 (whole-number floats accepted)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise InputError(f"{name} has shape {y.shape}; expected class indices of shape (m,)",
                         "turn one-hot rows or probabilities into labels with argmax(axis=1)")
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise InputError(f"{name} holds values that are not whole numbers", "pass class indices 0..K−1")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise InputError(f"{name} must hold class indices, got dtype {y.dtype}",
                         "encode text labels as 0..K−1 first (deltaprop.io.datasets.encode_labels)")
    y = y.astype(np.int64, copy=False)
    if y.size and y.min() < 0:
        raise InputError(f"{name} holds a negative label ({int(y.min())})", "class indices run 0..K−1")
    return y


def _class_pair(y_true, y_pred, n_classes):
    """(y_true, y_pred, K) as label arrays and the number of classes they are counted over."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    top = int(max(y_true.max(), y_pred.max()))
    if n_classes is None:
        return y_true, y_pred, top + 1
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise InputError(f"n_classes must be a whole number ≥ 1, got {n_classes!r}", "pass the number of classes K")
    if top >= n_classes:
        raise InputError(f"label {top} is out of range for {n_classes} classes (0..{n_classes - 1})",
                         "pass n_classes = the number of classes, or leave it out")
    return y_true, y_pred, int(n_classes)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den is 0 (scikit-learn's zero_division=0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


# -- classification ------------------------------------------------------------------------------------

def accuracy(y_true, y_pred) -> float:
    """(1/m) Σ_i 1{ŷ_i = y_i}: the fraction of examples predicted right.

    Labels may be any values that compare equal (indices, strings). For 2-d indicator arrays
    (multi-label, one column per output) a row counts as right only when every column matches
    (subset accuracy, as the trainer reports it).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        if y_true.size == y_pred.size and y_true.shape[0] == y_pred.shape[0]:  # (m,) against (m, 1)
            y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
        else:
            raise InputError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}",
                             "compare labels with labels, or indicator rows with indicator rows")
    right = y_true == y_pred
    if right.ndim > 1:
        right = right.reshape(right.shape[0], -1).all(axis=1)
    return float(np.mean(right))


def confusion_matrix(y_true, y_pred, n_classes=None) -> np.ndarray:
    """C (K, K) int64 with C[j, k] = number of examples of true class j predicted as class k.

    Rows are the true class, columns the predicted class (scikit-learn's convention), so the
    diagonal holds the right predictions, row sums the support and column sums the predictions
    per class. K = ``n_classes``, or 1 + the largest label seen.
    """
    y_true, y_pred, K = _class_pair(y_true, y_pred, n_classes)
    return np.bincount(y_true * K + y_pred, minlength=K * K).reshape(K, K).astype(np.int64)


def _per_class_from_cm(C: np.ndarray) -> dict:
    tp = np.diag(C).astype(np.float64)
    support = C.sum(axis=1)
    predicted = C.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * tp, predicted + support)
    total = support.sum()
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": [int(s) for s in support],
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "weighted_precision": float(np.dot(precision, support) / total) if total else 0.0,
        "weighted_recall": float(np.dot(recall, support) / total) if total else 0.0,
        "weighted_f1": float(np.dot(f1, support) / total) if total else 0.0,
    }


def per_class(y_true, y_pred, n_classes=None) -> dict:
    """Precision, recall, F1 and support per class, from the confusion matrix C:

        precision_k = C[k,k] / Σ_j C[j,k],  recall_k = C[k,k] / Σ_j C[k,j],
        F1_k = 2 C[k,k] / (Σ_j C[j,k] + Σ_j C[k,j]),  support_k = Σ_j C[k,j].

    A ratio with a zero denominator is 0.0 (a class never predicted has precision 0), as
    scikit-learn's ``zero_division=0``. Returns lists ``precision``, ``recall``, ``f1``,
    ``support`` (class 0 first) and the unweighted means over all K classes ``macro_precision``,
    ``macro_recall``, ``macro_f1`` (scikit-learn's ``average='macro', labels=range(K)``), and
    ``weighted_precision``, ``weighted_recall``, ``weighted_f1`` (weighted by support).
    """
    return _per_class_from_cm(confusion_matrix(y_true, y_pred, n_classes))


def log_loss(Y_or_labels, P) -> float:
    """−(1/m) Σ_i Σ_k y_ik log p_ik, the mean cross-entropy of predicted class probabilities.

    ``P`` (m, K) holds probabilities whose rows sum to 1 (softmax outputs), or (m,) / (m, 1) the
    probability of class 1 for a binary problem (one sigmoid unit), read as [1 − p, p].
    ``Y_or_labels`` is class indices (m,) or a one-hot matrix (m, K). Probabilities are clipped to
    [1e-15, 1] so that a confidently wrong prediction costs −log 1e-15 ≈ 34.5 instead of ∞.
    """
    Y, P = _pair(Y_or_labels, P, "targets and probabilities")
    P = np.asarray(P, dtype=np.float64)
    if P.ndim == 1 or (P.ndim == 2 and P.shape[1] == 1):
        p = P.reshape(-1)
        P = np.stack([1.0 - p, p], axis=1)
    if P.ndim != 2:
        raise InputError(f"P has shape {P.shape}; expected probabilities of shape (m, K)", "pass net.predict_proba(X)")
    if not np.all(np.isfinite(P)) or P.min() < 0 or P.max() > 1 + 1e-6:
        raise InputError("P holds values outside [0, 1]; expected probabilities",
                         "pass the softmax (or sigmoid) outputs, not the logits Z")
    worst = float(np.max(np.abs(P.sum(axis=1) - 1.0)))
    if worst > 1e-3:
        raise InputError(f"the rows of P do not sum to 1 (off by up to {worst:.3g})",
                         "pass one probability per class, as the softmax output gives them")
    K = P.shape[1]
    Y = np.asarray(Y)
    if Y.ndim == 2 and Y.shape[1] > 1:
        if Y.shape[1] != K:
            raise InputError(f"Y has {Y.shape[1]} columns but P has {K}", "pass one column per class in both")
        Y = Y.astype(np.float64)
    else:
        labels = _labels(Y, "labels")
        if labels.max() >= K:
            raise InputError(f"label {int(labels.max())} is out of range for {K} columns of probabilities",
                             "pass one probability column per class")
        Y = np.zeros((labels.shape[0], K))
        Y[np.arange(labels.shape[0]), labels] = 1.0
    logP = np.log(np.clip(P, LOG_EPS, 1.0))
    return float(-np.sum(Y * logP) / Y.shape[0])


# -- regression ----------------------------------------------------------------------------------------

def _regression_pair(y_true, y_pred):
    """Both as float64 (m, n_outputs); (m,) and (m, 1) are the same thing."""
    y_true, y_pred = _pair(y_true, y_pred, "targets")
    try:
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("regression targets must be numbers", "pass numeric arrays") from None
    if y_true.ndim == 1:
        y_true = y_true.reshape(-1, 1)
    if y_pred.ndim == 1:
        y_pred = y_pred.reshape(-1, 1)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise InputError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}",
                         "pass one prediction per target value")
    if not (np.all(np.isfinite(y_true)) and np.all(np.isfinite(y_pred))):
        raise InputError("the targets or predictions contain NaN or infinity", "check the model for divergence")
    return y_true, y_pred


def mean_squared_error(y_true, y_pred) -> float:
    """(1/(m n)) Σ_i Σ_k (y_ik − ŷ_ik)²; y (m,) or (m, n). With several outputs this is the
    uniform average of the per-output MSEs. (The squared-error *loss* the engine minimizes is
    ½ Σ_k per example; this is the usual metric, without the ½.)"""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    R = y_true - y_pred
    return float(np.mean(R * R))


def r2_score(y_true, y_pred) -> float:
    """R² = 1 − Σ_i (y_i − ŷ_i)² / Σ_i (y_i − ȳ)², averaged uniformly over outputs.

    1 is a perfect fit, 0 is no better than predicting the mean, and it is negative for worse.
    An output whose true values are all equal (denominator 0) scores 1 when predicted exactly
    and 0 otherwise, as scikit-learn does. Needs at least two examples.
    """
    y_true, y_pred = _regression_pair(y_true, y_pred)
    if y_true.shape[0] < 2:
        raise InputError("R² needs at least two examples (the variance of one value is 0)",
                         "evaluate on more rows, or use mean_squared_error")
    ss_res = np.sum((y_true - y_pred) ** 2, axis=0)
    ss_tot = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - _safe_divide(ss_res, ss_tot), np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(r2))


def mean_absolute_error(y_true, y_pred) -> float:
    """(1/(m n)) Σ_i Σ_k |y_ik − ŷ_ik|; y (m,) or (m, n)."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def regression_summary(y_true, y_pred) -> dict:
    """``mse``, ``rmse``, ``mae``, ``r2`` (R² needs two rows or more: None with one) and ``n_examples``."""
    mse = mean_squared_error(y_true, y_pred)
    return {"n_examples": int(np.shape(y_true)[0]), "mse": mse, "rmse": float(np.sqrt(mse)),
            "mae": mean_absolute_error(y_true, y_pred),
            "r2": r2_score(y_true, y_pred) if np.shape(y_true)[0] > 1 else None}


def _binary_pair(y_true, scores):
    y_true, scores = _pair(y_true, scores, "scores")
    y = _labels(y_true, "y_true")
    if y.ndim != 1 or np.ndim(scores) != 1:
        raise InputError("ROC and precision-recall need 1-d labels and 1-d scores",
                         "pass the probability of the positive class, P[:, 1]")
    if np.any(y > 1):
        raise InputError("ROC and precision-recall are for two classes (labels 0 and 1)",
                         "pass binary labels")
    positives = int(y.sum())
    if positives == 0 or positives == y.shape[0]:
        raise InputError("ROC and precision-recall need examples of both classes; only one occurs",
                         "evaluate on rows of both classes")
    return y, np.asarray(scores, dtype=np.float64)


def roc_curve(y_true, scores):
    """(fpr, tpr, thresholds): predicting positive where score ≥ threshold, for each distinct score
    from the highest down (the first point is threshold ∞: nothing positive, (0, 0))."""
    y, s = _binary_pair(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.shape[0] - 1]  # the last row of every run of equal scores
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc_score(y_true, scores) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting ½ (the trapezoids under :func:`roc_curve`)."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def average_precision_score(y_true, scores) -> float:
    """AP = Σ_n (R_n − R_{n−1}) P_n, precision P_n and recall R_n when predicting positive where
    score ≥ the n-th distinct score, high first (scikit-learn's definition: no interpolation)."""
    y, s = _binary_pair(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.shape[0] - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# -- one JSON-able summary -----------------------------------------------------------------------------

def classification_summary(y_true, y_pred, class_names, P=None) -> dict:
    """Everything a report on a classifier shows, as plain Python values (``json.dumps`` works):

    ``n_examples``, ``accuracy``, ``log_loss`` (when the probabilities P are given), ``macro_f1``,
    ``macro_precision``, ``macro_recall``, ``weighted_precision``, ``weighted_recall``, ``weighted_f1``,
    ``per_class`` = {name: {precision,
    recall, f1, support}}, ``confusion_matrix`` (nested lists, rows = true class) and
    ``class_names``. Labels are indices into ``class_names``.
    """
    names = [str(c) for c in class_names]
    if not names:
        raise InputError("class_names is empty", "pass one name per class")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"class names repeat: {', '.join(map(repr, dup))}", "give every class its own name")
    C = confusion_matrix(y_true, y_pred, n_classes=len(names))
    pc = _per_class_from_cm(C)
    summary = {"n_examples": int(C.sum()), "accuracy": float(np.trace(C) / C.sum())}
    if P is not None:
        summary["log_loss"] = log_loss(y_true, P)
    summary.update({key: pc[key] for key in ("macro_f1", "macro_precision", "macro_recall",
                                             "weighted_precision", "weighted_recall", "weighted_f1")})
    summary["per_class"] = {
        name: {"precision": pc["precision"][k], "recall": pc["recall"][k], "f1": pc["f1"][k],
               "support": pc["support"][k]}
        for k, name in enumerate(names)
    }
    summary["confusion_matrix"] = C.tolist()
    summary["class_names"] = names
    if P is not None and len(names) == 2 and np.ndim(P) == 2 and np.shape(P)[1] == 2:
        # Two classes: how well the probability of the second ranks the rows, whatever the threshold.
        y = _labels(y_true, "y_true")
        if 0 < int(y.sum()) < y.shape[0]:
            summary["roc_auc"] = roc_auc_score(y, P[:, 1])
            summary["average_precision"] = average_precision_score(y, P[:, 1])
        else:
            summary["roc_auc"] = summary["average_precision"] = None
        summary["threshold"] = 0.5
        summary["positive_class"] = names[1]
    return summary
