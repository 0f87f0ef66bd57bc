"""Progress bars drawn from training callbacks: the engine calls back, this module draws.

:class:`ProgressBar` is what ``deltaprop.fit(..., progress=True)`` plugs in: tqdm's ``auto`` bar,
which is a text bar in a terminal and a widget in Jupyter (``pip install tqdm``; in Jupyter also
``ipywidgets``, or tqdm falls back to text).
"""

from __future__ import annotations

from deltaprop.errors import ConfigError
from deltaprop.train import Callback

__all__ = ["ProgressBar"]


def _fields(logs: dict) -> dict:
    """The epoch's figures for the bar's postfix: loss, accuracy, validation loss and accuracy."""
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    return {short: f"{logs[key]:.4g}" for key, short in names.items() if logs.get(key) is not None}


class ProgressBar(Callback):
    """One bar over the epochs, with the last epoch's loss (and accuracy, validation figures)."""

    def __init__(self, leave: bool = True):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ConfigError(
                "progress=True draws its bar with tqdm, which is not installed",
                "pip install tqdm (or pip install 'deltaprop[notebook]'), or leave progress out",
            ) from None
        self._tqdm = tqdm
        self.leave = leave
        self.bar = None

    def on_train_begin(self, trainer) -> None:
        self.bar = self._tqdm(
            total=trainer.epochs, initial=trainer.epoch, unit="epoch", leave=self.leave, desc="training"
        )

    def on_epoch_end(self, trainer, logs) -> None:
        if self.bar is not None:
            self.bar.set_postfix(_fields(logs), refresh=False)
            self.bar.update(1)

    def on_train_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
