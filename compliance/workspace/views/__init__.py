"""The workspace's pages, one module per area: cases, legal holds, the audit
trail, search, reconstruction, exports. Routes: ``compliance.workspace.urls``.

Each view is a handful of lines: a guard from ``access`` (which hands it an
``AuthenticatedHttpRequest``), one access, service or selector call, one
response. Every look into the archive or the trail is one audit event,
written through ``compliance.audit.audit_event_record`` with the request's
``Origin``.
"""
