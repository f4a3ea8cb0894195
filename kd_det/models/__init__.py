from .algorithms import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
