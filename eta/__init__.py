"""The ETA core: GTFS network, matching, tracking and prediction. Pure: no network or database imports."""

# First, so that the hot modules load compiled when a build of exactly these sources exists (eta/native.py).
from eta import native as native
