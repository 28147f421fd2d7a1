"""Arrival prediction that learns from observed stop events (pure: values in, values out).

`LearningPredictor` is the entry point: `observe(events)` after each tracker output, `predict(state)`
for the vehicle's stops ahead and its block's next trips; `state_bytes`/`from_bytes` (and `save`/`load`
for files) persist what it learned, tied to the feed version (eta/prediction/learned_state.py).
"""

from eta.prediction.predictor import LearningPredictor
from eta.prediction.travel_model import TravelModel

__all__ = ["LearningPredictor", "TravelModel"]
