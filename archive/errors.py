class FileRefused(Exception):
    """An upload that is not stored, with a stable code and a clear reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
