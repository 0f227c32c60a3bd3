"""Live updates for open tracking pages, over server-sent events.

- subscriber.py: the process's one Redis pattern subscription;
- hub.py: the streams open in this process, their mailboxes, and publish();
- fanout.py: which pages a change concerns (its written-out SQL);
- receivers.py: what announces the domain's changes (connected in apps.py);
- stream.py: the SSE generator, the bare ASGI app and the Django view.
"""
