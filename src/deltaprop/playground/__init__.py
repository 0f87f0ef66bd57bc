"""``deltaprop playground``: a local web app that trains a network with deltaprop's engine while you watch.

Choose a data set, the layers, activation, optimizer, learning rate, batch size and λ; press Step for
one mini-batch, Play to keep going; watch the network (edges are weights), the decision boundary,
the loss curves, and the backprop view: the next Step's batch, stage by stage, with the equations
from ``explain`` and the finite-difference check from ``trace``. The page holds no mathematics: it
asks the server (:mod:`deltaprop.playground.server`), which runs deltaprop.
"""

from deltaprop.playground.server import create_app, make_server, serve

__all__ = ["create_app", "make_server", "serve"]
