"""The prediction core: pure, importable from a notebook with nothing else running.

from core import predict
predict({"Age": 22.0, "Cabin": None, "Embarked": "S", "Fare": 7.25,
         "Parch": 0, "Pclass": 3, "Sex": "male", "SibSp": 1})
"""

from core.errors import (
    ConflictingPrediction,
    CoreError,
    FieldError,
    InvalidObservation,
    InvalidRequest,
    ModelError,
    StorageError,
    UnknownPrediction,
)
from core.model import Model, default_model, load_model
from core.predict import Prediction, predict, predict_each, predict_many

__all__ = [
    "ConflictingPrediction",
    "CoreError",
    "FieldError",
    "InvalidObservation",
    "InvalidRequest",
    "Model",
    "ModelError",
    "Prediction",
    "StorageError",
    "UnknownPrediction",
    "default_model",
    "load_model",
    "predict",
    "predict_each",
    "predict_many",
]
