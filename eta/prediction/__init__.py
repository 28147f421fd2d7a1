"""Arrival prediction that learns from observed stop events (pure: values in, values out).

`LearningPredictor` is the entry point: `observe(events)` after each tracker output, `predict(state)`
for the vehicle's stops ahead and its block's next trips; `save`/`load` persist what it learned.
"""

from eta.prediction.predictor import LearningPredictor
from eta.prediction.travel_model import TravelModel

__all__ = ["LearningPredictor", "TravelModel"]
