"""polarity: binary sentiment analysis, from data preparation to serving.

Every text gets POSITIVE or NEGATIVE, a calibrated confidence and, where the backend
supports it, a reason. The plain Python API::

    import polarity
    clf = polarity.load_classifier("default")
    clf.predict(["I love it"])[0].label  # "POSITIVE"
"""

from polarity.labels import LABELS, NEGATIVE, POSITIVE
from polarity.predictor import Prediction, Predictor, load_classifier
from polarity.version import __version__

__all__ = ["LABELS", "NEGATIVE", "POSITIVE", "Prediction", "Predictor", "__version__",
           "load_classifier"]
