import logging
import re

# A tracking token is the only key to a parcel's page, so it must not end up
# readable in log files: /t/<token>/ and /embed/<token>/ keep a short prefix.
_TOKEN_IN_PATH = re.compile(r"(/(?:t|embed)/)([A-Za-z0-9_-]{6})[A-Za-z0-9_-]{10,}")

# A signed unsubscribe or re-subscribe confirmation token works for anyone
# who holds it (and its start is the subscription id): none of it is kept.
# Up to the next slash or space, whatever it holds: a signed token's colons
# come percent-encoded in an access log line.
_SIGNED_TOKEN_IN_PATH = re.compile(r"(/(?:unsubscribe|confirm)/)[^/\s\"'?#]{6,}")


def mask_tokens(text: str) -> str:
    return _SIGNED_TOKEN_IN_PATH.sub(r"\1…", _TOKEN_IN_PATH.sub(r"\1\2…", text))


class MaskTrackingTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
