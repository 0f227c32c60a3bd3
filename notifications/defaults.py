"""The built-in wording of every message, per status (or alert topic) and
language.

Brands override any of it with a MessageTemplate in the admin. Placeholders
are string.Template ones ($first_name, $brand, $tracking_number, $status,
$link, and $window in the running-late message): they substitute values and nothing else, so a template typed into
the admin cannot reach into objects the way a Django template could.
"""

from shipments.statuses import Status

# status → language → (sms text, email subject, email text)
DEFAULT_TEXTS: dict[str, dict[str, tuple[str, str, str]]] = {
    Status.OUT_FOR_DELIVERY: {
        "en": (
            "$brand: your parcel $tracking_number is out for delivery today. Track it live: $link",
            "Your parcel is out for delivery",
            "Hi $first_name,\n\nyour parcel $tracking_number from $brand is on the van and arrives today.\n\n"
            "You can watch the driver on the map as they get close.",
        ),
        "es": (
            "$brand: tu paquete $tracking_number está en reparto hoy. Síguelo en directo: $link",
            "Tu paquete está en reparto",
            "Hola $first_name:\n\ntu paquete $tracking_number de $brand va en la furgoneta y llega hoy.\n\n"
            "Puedes ver al repartidor en el mapa cuando esté cerca.",
        ),
        "de": (
            "$brand: Ihr Paket $tracking_number wird heute zugestellt. Live verfolgen: $link",
            "Ihr Paket ist in Zustellung",
            "Hallo $first_name,\n\nIhr Paket $tracking_number von $brand ist im Fahrzeug und kommt heute an.\n\n"
            "Sobald der Fahrer in der Nähe ist, sehen Sie ihn auf der Karte.",
        ),
    },
    Status.FAILED_ATTEMPT: {
        "en": (
            "$brand: we could not deliver your parcel $tracking_number today. See what happens next: $link",
            "We missed you",
            "Hi $first_name,\n\nwe tried to deliver your parcel $tracking_number from $brand but could not.\n\n"
            "The tracking page says what happens next and lets you leave instructions for the driver.",
        ),
        "es": (
            "$brand: no pudimos entregar tu paquete $tracking_number hoy. Qué pasa ahora: $link",
            "No pudimos entregar tu paquete",
            "Hola $first_name:\n\nintentamos entregar tu paquete $tracking_number de $brand, pero no fue posible.\n\n"
            "En la página de seguimiento verás los próximos pasos y podrás dejar instrucciones al repartidor.",
        ),
        "de": (
            "$brand: Ihr Paket $tracking_number konnte heute nicht zugestellt werden. So geht es weiter: $link",
            "Wir haben Sie nicht angetroffen",
            "Hallo $first_name,\n\nwir konnten Ihr Paket $tracking_number von $brand nicht zustellen.\n\n"
            "Auf der Sendungsseite sehen Sie, wie es weitergeht, und können dem Fahrer Hinweise geben.",
        ),
    },
    Status.DELIVERED: {
        "en": (
            "$brand: your parcel $tracking_number has been delivered. Details: $link",
            "Your parcel has been delivered",
            "Hi $first_name,\n\nyour parcel $tracking_number from $brand has been delivered.\n\n"
            "The tracking page shows the proof of delivery.",
        ),
        "es": (
            "$brand: tu paquete $tracking_number ha sido entregado. Detalles: $link",
            "Tu paquete ha sido entregado",
            "Hola $first_name:\n\ntu paquete $tracking_number de $brand ha sido entregado.\n\n"
            "En la página de seguimiento verás la prueba de entrega.",
        ),
        "de": (
            "$brand: Ihr Paket $tracking_number wurde zugestellt. Details: $link",
            "Ihr Paket wurde zugestellt",
            "Hallo $first_name,\n\nIhr Paket $tracking_number von $brand wurde zugestellt.\n\n"
            "Den Zustellnachweis finden Sie auf der Sendungsseite.",
        ),
    },
    Status.EXCEPTION: {
        "en": (
            "$brand: there is a problem with your parcel $tracking_number. We are on it: $link",
            "There is a problem with your parcel",
            "Hi $first_name,\n\nsomething is holding up your parcel $tracking_number from $brand.\n\n"
            "We are working on it; the tracking page has the latest.",
        ),
        "es": (
            "$brand: hay un problema con tu paquete $tracking_number. Lo estamos resolviendo: $link",
            "Hay un problema con tu paquete",
            "Hola $first_name:\n\nalgo está retrasando tu paquete $tracking_number de $brand.\n\n"
            "Estamos en ello; la página de seguimiento tiene la información más reciente.",
        ),
        "de": (
            "$brand: Es gibt ein Problem mit Ihrem Paket $tracking_number. Wir kümmern uns: $link",
            "Es gibt ein Problem mit Ihrem Paket",
            "Hallo $first_name,\n\netwas hält Ihr Paket $tracking_number von $brand auf.\n\n"
            "Wir kümmern uns darum; auf der Sendungsseite steht der aktuelle Stand.",
        ),
    },
}

# Any other status a brand chooses to notify about.
GENERIC_TEXTS: dict[str, tuple[str, str, str]] = {
    "en": (
        "$brand: your parcel $tracking_number: $status. $link",
        "Your parcel: $status",
        "Hi $first_name,\n\nnews about your parcel $tracking_number from $brand: $status.",
    ),
    "es": (
        "$brand: tu paquete $tracking_number: $status. $link",
        "Tu paquete: $status",
        "Hola $first_name:\n\nnovedades de tu paquete $tracking_number de $brand: $status.",
    ),
    "de": (
        "$brand: Ihr Paket $tracking_number: $status. $link",
        "Ihr Paket: $status",
        "Hallo $first_name,\n\nNeuigkeiten zu Ihrem Paket $tracking_number von $brand: $status.",
    ),
}


def default_texts(subject: str, language: str) -> tuple[str, str, str]:
    """The built-in texts of a status message or, for a ContactTopic, of
    that alert message."""
    by_language = TOPIC_TEXTS.get(subject) or DEFAULT_TEXTS.get(subject, GENERIC_TEXTS)
    return by_language.get(language) or by_language["en"]


# The messages about an alert (shipments.alert_models.ContactTopic): late and
# missed_scan go out by themselves when those alerts open, and staff send
# any of them from the "Needs attention" queue. $window is a whole sentence
# (WINDOW_SENTENCES), so that a template reads well whether a new time is
# known or not.
# topic → language → (sms text, email subject, email text)
TOPIC_TEXTS: dict[str, dict[str, tuple[str, str, str]]] = {
    "late": {
        "en": (
            "$brand: your parcel $tracking_number is running late. $window $link",
            "Your parcel is running late",
            "Hi $first_name,\n\nwe're sorry: your parcel $tracking_number from $brand is running late.\n\n$window\n\n"
            "The tracking page always has the latest.",
        ),
        "es": (
            "$brand: tu paquete $tracking_number va con retraso. $window $link",
            "Tu paquete va con retraso",
            "Hola $first_name:\n\nlo sentimos: tu paquete $tracking_number de $brand va con retraso.\n\n$window\n\n"
            "La página de seguimiento tiene siempre la información más reciente.",
        ),
        "de": (
            "$brand: Ihr Paket $tracking_number verspätet sich. $window $link",
            "Ihr Paket verspätet sich",
            "Hallo $first_name,\n\nIhr Paket $tracking_number von $brand verspätet sich leider.\n\n$window\n\n"
            "Auf der Sendungsseite steht immer der aktuelle Stand.",
        ),
    },
    "missed_scan": {
        "en": (
            "$brand: we're checking on your parcel $tracking_number with the driver. $link",
            "We're checking on your parcel",
            "Hi $first_name,\n\nthe driver was at your address, but your parcel $tracking_number from $brand "
            "was not scanned as delivered.\n\nWe're checking with them now and will let you know.",
        ),
        "es": (
            "$brand: estamos comprobando tu paquete $tracking_number con el repartidor. $link",
            "Estamos comprobando tu paquete",
            "Hola $first_name:\n\nel repartidor estuvo en tu dirección, pero tu paquete $tracking_number de $brand "
            "no se registró como entregado.\n\nLo estamos comprobando con él y te avisaremos.",
        ),
        "de": (
            "$brand: Wir klären mit dem Fahrer, wo Ihr Paket $tracking_number ist. $link",
            "Wir prüfen, wo Ihr Paket ist",
            "Hallo $first_name,\n\nder Fahrer war an Ihrer Adresse, aber Ihr Paket $tracking_number von $brand "
            "wurde nicht als zugestellt erfasst.\n\nWir klären das gerade mit ihm und melden uns bei Ihnen.",
        ),
    },
    "looking_into_it": {
        "en": (
            "$brand: we're looking into the delivery of your parcel $tracking_number. $link",
            "We're looking into your delivery",
            "Hi $first_name,\n\nwe're looking into the delivery of your parcel $tracking_number from $brand.\n\n"
            "We'll be in touch as soon as we know more; the tracking page has the latest.",
        ),
        "es": (
            "$brand: estamos revisando la entrega de tu paquete $tracking_number. $link",
            "Estamos revisando tu entrega",
            "Hola $first_name:\n\nestamos revisando la entrega de tu paquete $tracking_number de $brand.\n\n"
            "Te contactaremos en cuanto sepamos más; la página de seguimiento tiene lo más reciente.",
        ),
        "de": (
            "$brand: Wir prüfen die Zustellung Ihres Pakets $tracking_number. $link",
            "Wir prüfen Ihre Zustellung",
            "Hallo $first_name,\n\nwir prüfen gerade die Zustellung Ihres Pakets $tracking_number von $brand.\n\n"
            "Wir melden uns, sobald wir mehr wissen; auf der Sendungsseite steht der aktuelle Stand.",
        ),
    },
    "redelivery": {
        "en": (
            "$brand: let's arrange a new delivery for your parcel $tracking_number: $link",
            "Let's arrange a new delivery",
            "Hi $first_name,\n\nyour parcel $tracking_number from $brand needs a new delivery.\n\n"
            "On the tracking page you can tell us what suits you, or reply to this email.",
        ),
        "es": (
            "$brand: organicemos una nueva entrega de tu paquete $tracking_number: $link",
            "Organicemos una nueva entrega",
            "Hola $first_name:\n\ntu paquete $tracking_number de $brand necesita una nueva entrega.\n\n"
            "En la página de seguimiento puedes decirnos qué te conviene, o responder a este correo.",
        ),
        "de": (
            "$brand: Vereinbaren wir eine neue Zustellung für Ihr Paket $tracking_number: $link",
            "Vereinbaren wir eine neue Zustellung",
            "Hallo $first_name,\n\nIhr Paket $tracking_number von $brand braucht eine neue Zustellung.\n\n"
            "Auf der Sendungsseite können Sie uns sagen, was Ihnen passt, oder auf diese E-Mail antworten.",
        ),
    },
}

# What $window says: a new time where one is known ($when, in the
# recipient's zone and language), else that one will follow. Short, and in
# GSM-7 (no á or ó), so that the SMS keeps to one segment.
WINDOW_SENTENCES: dict[str, tuple[str, str]] = {
    "en": ("Now expected $when.", "A new time will follow."),
    "es": ("Nueva hora prevista: $when.", "Te daremos una nueva hora."),
    "de": ("Jetzt erwartet: $when.", "Eine neue Zeit folgt."),
}


def window_sentence(language: str, when: str) -> str:
    """$window: ``when`` (already formatted) in a sentence, or, empty, the
    promise of a new time."""
    known, unknown = WINDOW_SENTENCES.get(language) or WINDOW_SENTENCES["en"]
    return known.replace("$when", when) if when else unknown
