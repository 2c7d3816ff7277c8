"""Domain errors of the messenger. Each has a stable ``code`` that the websocket
sends in its error frame and the pages turn into a message."""


class MessengerError(Exception):
    code = "invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(MessengerError):
    """Missing, or not yours: the same error, so nothing leaks."""

    code = "not_found"

    def __init__(self, what: str = "conversation") -> None:
        super().__init__(f"No such {what}, or you are not a member.")


class Forbidden(MessengerError):
    code = "forbidden"


class Invalid(MessengerError):
    code = "invalid"


class BodyTooLong(MessengerError):
    code = "body_too_long"


class ClientIdConflict(MessengerError):
    code = "client_id_conflict"


class EditWindowClosed(MessengerError):
    code = "edit_window_closed"


class ConversationArchived(MessengerError):
    code = "archived"


class RecipientInactive(MessengerError):
    code = "recipient_inactive"
