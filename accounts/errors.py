class InvitationInvalid(Exception):
    """The invitation link is unknown, used, revoked or expired.

    One error for every case, so a guessed link learns nothing.
    """

    def __init__(self) -> None:
        super().__init__(
            "This invitation link is not valid any more. It may have been used already "
            "or have expired; ask HR to send you a new one."
        )
