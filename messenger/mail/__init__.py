"""The email bridge: missed-message mails, replies by email, and external
contacts who take part in a conversation by mail (docs/email.md).

- ``tokens``: the signed reply addresses (conversation + recipient).
- ``outgoing``: building notification and relay mails (HTML and text, threading).
- ``notifications``: who is mailed when, batched (a service; Celery runs it).
- ``incoming``: authenticating a received mail and posting its reply.
- ``reply_text``: the new text of a reply, without quotes and signatures.
- ``lmtp`` / ``imap``: the two ways mail reaches ``incoming``.
"""
