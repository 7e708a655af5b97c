"""Pixels: the Cosmos decoder (token codes to RGB) and figures in pixel space."""
