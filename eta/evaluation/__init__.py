"""Scoring arrival predictions as riders see them: the rider-view sampling of issue 5, the MBTA bins and
the 2024 ETA Accuracy Benchmark, availability, wobble, and the two schedule baselines.

Pure except for reading the input files (`files`), replaying pings for the baselines (`baselines`) and
drawing the chart (`chart`).
"""
