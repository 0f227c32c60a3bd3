"""embed_secret SLUG [--rotate]: print the brand's embed secret, which its
server signs the widget's order links with, alone on the last line; make one
if the brand has none. --rotate makes a new one; the old one still verifies
for a day, while the brand's servers switch over."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from shipments import edits
from shipments.models import Brand


class Command(BaseCommand):
    help = "Print a brand's embed secret (made if missing), alone on the last line; --rotate makes a new one."

    def add_arguments(self, parser):
        parser.add_argument("brand_slug")
        parser.add_argument(
            "--rotate", action="store_true", help="Make a new secret; the current one stays valid for a day."
        )

    def handle(self, *args, brand_slug, rotate, **options):
        with transaction.atomic():
            brand = Brand.objects.select_for_update().filter(slug=brand_slug).first()
            if brand is None:
                raise CommandError(
                    f"No brand {brand_slug!r}; create it with: manage.py create_brand {brand_slug} --name …"
                )
            if rotate or not brand.embed_secret:
                had_one = bool(brand.embed_secret)
                edits.rotate_brand_secret(brand=brand, field="embed_secret")
                if had_one:
                    self.stdout.write("A new embed secret; the previous one still verifies for 24 hours.")
                else:
                    self.stdout.write("A new embed secret.")
        self.stdout.write(f"Sign {brand.slug}'s widget order links with this secret (keep it on your server):")
        self.stdout.write(brand.embed_secret)
