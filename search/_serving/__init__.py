"""Using what a search found: an export folder (model, vocabulary, threshold, labels, card) and a predictor.

    python -m search.export --study attn --out model/
    python -m search.predict model/ --input new.jsonl

    import search
    search.load_predictor("model/").predict(["a library for parsing JSON"])

The folder format and the input files are read without keras; keras loads with the models.
"""
from __future__ import annotations

from search._serving._bundle import FORMAT, MANIFEST, VERSION, Manifest, read_manifest
from search._serving._predictor import Prediction, Predictor, load_predictor

__all__ = ["FORMAT", "MANIFEST", "VERSION", "Manifest", "Prediction", "Predictor", "load_predictor", "read_manifest"]
