"""`smartbus services`: install, start, stop and check the real Kafka, PostgreSQL and Redis on loopback.

Each service keeps its binaries (Kafka's jars), data, logs and pidfile under one services directory,
so that nothing outside it is touched except Debian packages installed when missing.
"""
