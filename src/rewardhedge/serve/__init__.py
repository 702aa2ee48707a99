"""The HTTP reward server (FastAPI + uvicorn; install the ``serve`` extra).

``create_app(model)`` builds the app; ``serve(model, config)`` runs it until
SIGINT/SIGTERM; ``BackgroundServer`` runs it in a thread (tests, notebooks).
"""

from __future__ import annotations

from rewardhedge.serve.app import create_app
from rewardhedge.serve.server import BackgroundServer, serve

__all__ = ["BackgroundServer", "create_app", "serve"]
