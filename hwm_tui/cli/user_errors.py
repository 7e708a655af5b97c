"""Every command turns a user mistake (hwm_core.errors.UserError) into one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

import typer
from rich.markup import escape

from hwm_core.errors import UserError

from .console import err_console


def user_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except RuntimeError as exc:
            from hwm_core.runtime.failures import FailureKind, classify

            if not (type(exc).__name__ == "OutOfMemoryError" and classify(exc) is FailureKind.OUT_OF_MEMORY):
                raise  # only torch's own out-of-memory is the user's (a smaller batch); anything else is a bug
            err_console.print(
                f"[bold red]error:[/] out of GPU memory ({escape(str(exc).splitlines()[0])}): lower "
                "train.batch_size (or set it to auto), or use a smaller preset",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop writing, quietly, as other tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except OSError as exc:
            # The file system said no (permissions, full disk, a file where a folder
            # should be): that is the user's to fix, in one line, not a traceback.
            where = f" ({exc.filename})" if exc.filename else ""
            err_console.print(
                f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}: check "
                "the path, its permissions and the free disk space",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper
