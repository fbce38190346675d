"""`rewardroute serve`: an OpenAI-compatible routing proxy and a reward-scoring API.

`create_app(config)` (in `serve.app`) builds the FastAPI app; `load_serve_config(path)` reads
`serve.yaml`. FastAPI is imported only by `serve.app`, so reading a config stays light.
"""

from .config import ServeConfig, load_serve_config

__all__ = ["ServeConfig", "load_serve_config"]
