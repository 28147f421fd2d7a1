from tests.prediction.conftest import cairns

__all__ = ["cairns"]
