"""What the engine runs on: devices, processes, memory, files written atomically."""
