"""Runs on disk: the folder, its record and lock, checkpoints, commands, history."""
