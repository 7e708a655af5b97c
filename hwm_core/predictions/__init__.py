"""Predictions of a trained model: inference, teacher-forced and MaskGIT, evaluation, samples."""
