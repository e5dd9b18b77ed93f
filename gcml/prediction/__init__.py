"""Prediction on real data: GC catalogues (:mod:`gcml.prediction.catalogue`) and FITS images
(:mod:`gcml.prediction.images`)."""

from gcml.prediction.catalogue import CataloguePrediction, MassEstimate, default_model_path, predict_catalogue

__all__ = ["CataloguePrediction", "MassEstimate", "default_model_path", "predict_catalogue"]
