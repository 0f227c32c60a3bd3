"""create_api_key BRAND_SLUG [--name NAME]: make an API key for a brand and
print it once, alone on the last line. Only its hash is kept."""

from django.core.management.base import BaseCommand, CommandError

from shipments import keys
from shipments.models import Brand


class Command(BaseCommand):
    help = "Create an API key for a brand; the key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("brand_slug")
        parser.add_argument("--name", default="", help="What the key is for, to tell keys apart.")

    def handle(self, *args, brand_slug, name, **options):
        brand = Brand.objects.filter(slug=brand_slug).first()
        if brand is None:
            raise CommandError(f"No brand {brand_slug!r}; create it with: manage.py create_brand {brand_slug} --name …")
        api_key, raw_key = keys.create_api_key(brand=brand, name=name)
        self.stdout.write(f"API key {api_key.prefix}… for {brand.slug}. It is shown only now; store it safely:")
        self.stdout.write(raw_key)
