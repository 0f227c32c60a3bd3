"""An SMS transport for the real-worker tests: it says that it was asked,
then, while the file named by HANG_SMS_FILE exists, never answers (as a
provider's API that stalls mid-request); otherwise it is the console's."""

import os
import sys
import time

from notifications.transports.sms import ConsoleSmsTransport


class HangingSmsTransport:
    def send(self, message):
        sys.stdout.write(f"--- SMS asked for {message.to}\n")
        sys.stdout.flush()
        flag = os.environ.get("HANG_SMS_FILE", "")
        while flag and os.path.exists(flag):
            time.sleep(0.1)
        return ConsoleSmsTransport().send(message)
