"""manage.py import_shipments: its output and exit status."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shipments import imports
from shipments.models import Shipment

HEADER = "tracking_number,recipient_phone,Ref\n"


def write(tmp_path, text: str, name: str = "shipments.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return str(path)


def run(*args):
    """The command's exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_shipments", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def test_all_good_exits_zero_with_the_counts(tmp_path, brand):
    path = write(tmp_path, HEADER + "LM1,+447700900123,a\nLM2,,b\n")
    code, out, _ = run(path, "--brand", brand.slug)
    assert code == 0
    assert "created 2, unchanged 0, refused 0 (of 2 rows)." in out
    assert "Ignored columns: Ref" in out
    assert Shipment.objects.filter(brand=brand).count() == 2


def test_refused_rows_are_printed_with_their_lines_and_exit_one_after_the_good_ones(tmp_path, brand):
    path = write(tmp_path, HEADER + "LM1,+447700900123,a\nLM2,0770,b\n,,c\nLM4,,d\n")
    code, out, _ = run(path, "--brand", brand.slug)
    assert code == 1
    assert "line 3: refused: recipient_phone: Use the international form" in out
    assert "line 4: refused: tracking_number is empty." in out
    assert "created 2, unchanged 0, refused 2 (of 4 rows)." in out
    assert set(Shipment.objects.values_list("tracking_number", flat=True)) == {"LM1", "LM4"}


def test_a_second_run_changes_nothing_and_says_so(tmp_path, brand):
    path = write(tmp_path, HEADER + "LM1,+447700900123,a\n")
    run(path, "--brand", brand.slug)
    code, out, _ = run(path, "--brand", brand.slug)
    assert code == 0
    assert "created 0, unchanged 1, refused 0" in out


def test_a_changed_row_for_an_existing_shipment_is_named_and_left(tmp_path, brand):
    run(write(tmp_path, HEADER + "LM1,+447700900123,a\n"), "--brand", brand.slug)
    code, out, _ = run(write(tmp_path, HEADER + "LM1,+447700900999,a\n", "again.csv"), "--brand", brand.slug)
    assert code == 0
    assert "line 2: already there with other values; left as it is." in out
    assert Shipment.objects.get().recipient_phone == "+447700900123"


def test_dry_run_writes_nothing_and_says_so(tmp_path, brand):
    path = write(tmp_path, HEADER + "LM1,+447700900123,a\nLM2,0770,b\n")
    code, out, _ = run(path, "--brand", brand.slug, "--dry-run")
    assert code == 1
    assert "Dry run, nothing written: would create 1, unchanged 0, refused 1 (of 2 rows)." in out
    assert "line 3: refused:" in out
    assert not Shipment.objects.exists()


def test_map_reads_other_headers(tmp_path, brand):
    path = write(tmp_path, "Parcel,Order No\nLM7,ORD-7\n")
    code, out, _ = run(path, "--brand", brand.slug, "--map", "Parcel=tracking_number", "--map", "Order No=order_ref")
    assert code == 0, out
    assert Shipment.objects.get().order_ref == "ORD-7"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"order_ref\nORD\n", [], "no tracking_number column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", [], "not a CSV file"),
        (b"tracking_number\nLM1\n", ["--map", "nonsense"], "HEADER=COLUMN"),
        (b"tracking_number\nLM1\n", ["--map", "x=tracking_number"], "does not have"),
    ],
)
def test_a_file_that_cannot_be_read_exits_two_and_writes_nothing(tmp_path, brand, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, _, error = run(str(path), "--brand", brand.slug, *args)
    assert code == 2
    assert message in error and "Nothing was imported." in error
    assert not Shipment.objects.exists()


def test_no_such_file_or_brand_exits_two(tmp_path, brand):
    assert run(str(tmp_path / "missing.csv"), "--brand", brand.slug)[0] == 2
    path = write(tmp_path, HEADER + "LM1,,\n")
    code, _, error = run(path, "--brand", "nobody")
    assert (code, error) == (2, "No brand 'nobody'.")


def test_a_long_file_prints_a_progress_line_on_stderr(tmp_path, brand, monkeypatch):
    from shipments.management.commands import import_shipments

    monkeypatch.setattr(import_shipments, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(imports, "BATCH", 2)
    path = write(tmp_path, HEADER + "".join(f"LM{n},,\n" for n in range(5)))
    code, out, err = run(path, "--brand", brand.slug)
    assert code == 0
    assert "line 3: created 2, unchanged 0, refused 0 (of 2 rows)" in err
    assert "line 6: created 5" in err
    assert "line" not in out.replace("Ignored", "")
