"""A yes/no (or more) question in a modal box; dismisses with the chosen answer's id."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 64; max-width: 95%; height: auto;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmScreen #question { margin-bottom: 1; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "answer('cancel')", "Cancel"), Binding("n", "answer('cancel')", "No", show=False)]

    def __init__(self, question: str, answers: list[tuple[str, str, str]]):
        """answers: (id, label, key) - the first one is the default button."""
        super().__init__()
        self.question = question
        self.answers = answers

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="question")
            with Horizontal():
                for i, (answer_id, label, key) in enumerate(self.answers):
                    yield Button(f"{label} ({key})", id=answer_id, variant="warning" if i == 0 else "default")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_key(self, event) -> None:
        for answer_id, _, key in self.answers:
            if event.key == key:
                event.stop()
                self.dismiss(answer_id)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_answer(self, answer_id: str) -> None:
        self.dismiss(answer_id)
