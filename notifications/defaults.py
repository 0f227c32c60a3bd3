"""The built-in wording of every message, per status and language.

Brands override any of it with a MessageTemplate in the admin. Placeholders
are string.Template ones ($first_name, $brand, $tracking_number, $status,
$link): they substitute values and nothing else, so a template typed into
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


def default_texts(status: str, language: str) -> tuple[str, str, str]:
    by_language = DEFAULT_TEXTS.get(status, GENERIC_TEXTS)
    return by_language.get(language) or by_language["en"]
