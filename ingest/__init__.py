"""Pings in: the HTTP edge for devices, the GTFS-realtime poller, and the validation every ping passes."""

# First, so that ingest.validate loads compiled with the ETA core when a build of these sources exists
# (eta/native.py): imported after it, the compiled build would be refused for the whole process.
import eta as _eta  # noqa: F401
