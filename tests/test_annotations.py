"""The public API states its types: every function and class named in ``deltaprop.__all__`` (the
estimators and the exchange functions included), and the optimizers and schedules, annotate each
public parameter and the return of each public method. Read from the signatures (``inspect``), so the
annotations may stay strings that only a type checker resolves (optional libraries are not imported)."""

from __future__ import annotations

import inspect

import pytest

import deltaprop as dp
from deltaprop.optim import OPTIMIZERS, SCHEDULES, Optimizer, Schedule

pytest.importorskip("sklearn", reason="the estimators of deltaprop.__all__ need scikit-learn")

# Dunder methods that are part of a class's public contract: construction, and a schedule's α(epoch).
PUBLIC_DUNDERS = ("__init__", "__call__")


def public_objects() -> dict[str, object]:
    """The functions and classes the API promises, by name."""
    objects = {}
    for name in dp.__all__:
        obj = getattr(dp, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            objects[name] = obj
    for cls in {Optimizer, Schedule, *OPTIMIZERS.values(), *SCHEDULES.values()}:
        objects[cls.__name__] = cls
    return objects


def deltaprop_functions(obj) -> list:
    """The plain functions behind a method, static or class method, property (getter and setter) or
    descriptor (such as scikit-learn's ``available_if``) that deltaprop wrote."""
    if isinstance(obj, (staticmethod, classmethod)):
        candidates = [obj.__func__]
    elif isinstance(obj, property):
        candidates = [obj.fget, obj.fset]
    else:
        candidates = [obj]
    found = []
    for fn in candidates:
        fn = inspect.unwrap(fn) if callable(fn) else fn
        if inspect.isfunction(fn) and (fn.__module__ or "").startswith("deltaprop"):
            found.append(fn)
    return found


def public_functions():
    """(qualified name, function, whether its first parameter is bound) for every public callable."""
    found = []
    for name, obj in sorted(public_objects().items()):
        if inspect.isfunction(obj):
            found.append((name, obj, False))
            continue
        for attr in sorted(dir(obj)):
            if attr.startswith("_") and attr not in PUBLIC_DUNDERS:
                continue
            static = inspect.getattr_static(obj, attr)
            fns = deltaprop_functions(static)
            if not fns and not isinstance(static, (staticmethod, classmethod, property)):
                fns = deltaprop_functions(getattr(obj, attr, None))  # descriptors: what the class hands out
            found += [(f"{name}.{attr}", fn, not isinstance(static, staticmethod)) for fn in fns]
    return found


def unannotated(fn, bound: bool) -> list[str]:
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1 if bound else 0:]
    missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_the_survey_sees_the_api():
    names = {name for name, _, _ in public_functions()}
    # Functions, methods of the engine's classes, the estimators' inherited and conditional methods.
    for expected in ("fit", "load", "predict_proba", "from_onnx", "Network.forward", "Network.from_sizes",
                     "Network.grads", "Dense.backward", "Trainer.run", "TrainOptions.__init__",
                     "History.loss",
                     "Adam.step", "StepDecay.__call__", "MLPClassifier.fit", "MLPClassifier.save",
                     "MLPClassifier.partial_fit", "MLPRegressor.load", "MLPClassifier.coefs_",
                     "DeadUnitMonitor.on_epoch_end"):
        assert expected in names, expected
    # Inherited from scikit-learn, not deltaprop's to annotate.
    assert "MLPClassifier.get_params" not in names


def test_every_public_parameter_and_return_is_annotated():
    missing = [f"{name}: {', '.join(params)}" for name, fn, bound in public_functions()
               if (params := unannotated(fn, bound))]
    assert not missing, "unannotated public parameters or returns:\n" + "\n".join(missing)


def test_the_check_finds_what_is_missing():
    def half(x, y: int):
        return x

    class Thing:
        def method(self, a: int) -> int:
            return a

    assert unannotated(half, bound=False) == ["x", "return"]
    assert unannotated(Thing.method, bound=True) == []
