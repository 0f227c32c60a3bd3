"""create_brand SLUG --name NAME [--webhook-url URL] [--embed-origin URL ...]:
make a brand, or leave an existing one as it is. With --webhook-url, also set
where the brand's webhooks go and print their signing secret, alone on the
last line. A URL the portal must not send to (shipments/outbound.py) is
refused and nothing is saved. --embed-origin (repeatable) sets the origins
allowed to frame the brand's status widget, replacing the ones it had; a bad
origin is refused and nothing is saved."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator, validate_slug
from django.db import transaction

from shipments import edits, embedding, keys
from shipments.models import Brand
from shipments.outbound import RefusedDestination, check_url


class Command(BaseCommand):
    help = "Create a brand (idempotent). With --webhook-url, set its webhook endpoint and print the signing secret."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--webhook-url", default="")
        parser.add_argument(
            "--embed-origin",
            action="append",
            default=[],
            dest="embed_origins",
            metavar="URL",
            help="An origin allowed to frame the status widget (https://shop.example.com); repeatable.",
        )

    def handle(self, *args, slug, name, webhook_url, embed_origins, **options):
        try:
            validate_slug(slug)
            origins = "\n".join(embedding.parse_origins("\n".join(embed_origins)))
            if webhook_url:
                URLValidator(schemes=["https", "http"])(webhook_url)
                check_url(webhook_url)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except RefusedDestination as refused:
            raise CommandError(f"--webhook-url refused: {refused.message}") from None
        with transaction.atomic():
            brand, created = Brand.objects.select_for_update().get_or_create(slug=slug, defaults={"name": name})
            self.stdout.write(f"{'Created' if created else 'Brand exists:'} {brand.slug} ({brand.name})")
            if origins and brand.embed_origins != origins:
                brand.embed_origins = origins
                edits.edit_brand(brand=brand, fields=["embed_origins"])
            if origins:
                self.stdout.write("The status widget may be framed by: " + " ".join(origins.split("\n")))
            if not webhook_url:
                return
            brand.webhook_url = webhook_url
            if brand.webhook_secret:
                # Running it again must not break the endpoint's verification:
                # keep the secret it already has.
                brand.save(update_fields=["webhook_url"])
            else:
                brand.webhook_secret = keys.new_webhook_secret()
                brand.save(update_fields=["webhook_url", "webhook_secret"])
        self.stdout.write(f"Webhooks go to {brand.webhook_url}, signed (Standard Webhooks) with this secret:")
        self.stdout.write(brand.webhook_secret)
