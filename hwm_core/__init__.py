"""hwm_core: the engine of hwm-tui. Data, model, trainer, runs store, events.

Nothing here imports the UI; the dashboard and the CLI use this package's API
and its event stream only.
"""

import time

from .runtime.malloc_arenas import use_one_malloc_arena

__version__ = "0.1.0"
# Where /proc cannot tell when this process started, commands sent before this moment are stale.
IMPORTED_AT = time.time()
# Before any thread allocates: see malloc_arenas for why a run repeats bitwise only then.
ONE_MALLOC_ARENA = use_one_malloc_arena()
