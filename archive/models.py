"""Company file storage: every uploaded file's exact bytes, kept by content.

The bytes live in the default storage (a folder or an S3 bucket) under a key
made from their SHA-256, so identical content is stored once; each upload keeps
its own record with its own name and uploader. This app knows nothing of
conversations or rights: whoever serves a file checks who may have it.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class StoredFile(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        NONE = "none", "Not applicable"
        FAILED = "failed", "Failed"

    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=120, help_text="Detected from the bytes, not the name.")
    name = models.CharField(max_length=255, help_text="The original name, for display only.")
    storage_key = models.CharField(max_length=255, help_text="Where the bytes are, in the default storage.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(db_default=Now())
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    preview_key = models.CharField(max_length=255, blank=True)
    preview_state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    text = models.TextField(blank=True, help_text="Text extracted for search.")
    text_state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)

    class Meta:
        ordering = ["-uploaded_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.content_type in INLINE_TYPES

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""


# Types that may be shown inline (raster images, re-encoded previews). Everything
# else, PDFs included, is sent as an attachment.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
