"""Model backends. Each turns texts into :class:`polarity.prediction.Prediction` objects."""
