"""Progress bars of the management commands: on stderr only, on a terminal or with --verbosity 2, never at 0."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand, OutputWrapper

from adengine.management.progress import bar, follow, showing
from tests.creatives.test_load_campaigns import _campaign

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's stderr is."""

    def isatty(self) -> bool:
        return True


def command(stream) -> BaseCommand:
    cmd = BaseCommand()
    cmd.stderr = OutputWrapper(stream)
    return cmd


@pytest.mark.parametrize(
    ("stream", "verbosity", "shown"),
    [
        (Terminal, 1, True),
        (Terminal, 0, False),
        (io.StringIO, 1, False),
        (io.StringIO, 2, True),
        (io.StringIO, 0, False),
    ],
)
def test_bars_are_drawn_on_a_terminal_or_when_asked(stream, verbosity, shown):
    out = stream()
    assert showing(command(out), verbosity) is shown
    with bar(command(out), verbosity, desc="things", total=4, unit="things") as things:
        move = follow(things)
        for done in range(1, 5):
            move(done, 4)
    assert ("things: 100%" in out.getvalue() and "4/4" in out.getvalue()) is shown


def test_a_callback_can_learn_the_total_late():
    out = Terminal()
    with bar(command(out), 1, desc="grid") as grid:
        follow(grid)(3, 12)
        assert (grid.n, grid.total) == (3, 12)


def test_shop_import_draws_its_bar_on_stderr_with_the_files_row_count(tmp_path):
    products = tmp_path / "products.csv"
    products.write_text("product_id,category,title_en,price\nP1,shoes,Runner,10\nP2,shoes,Trail,12\nP3,bags,Tote,8\n")
    out, err = io.StringIO(), Terminal()
    call_command("shop_import", products=str(products), stdout=out, stderr=err)
    assert "products: 100%" in err.getvalue() and "3/3" in err.getvalue()
    assert out.getvalue() == "products: 3 loaded, 0 unchanged\n"  # the results alone on stdout
    # and a test's (or a pipe's) stderr stays clean at the default verbosity
    quiet = io.StringIO()
    call_command("shop_import", products=str(products), stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""


def test_load_campaigns_counts_campaigns_and_queued_copy(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps([_campaign("Trail season"), _campaign("Road season")]))
    err = io.StringIO()
    call_command(
        "adengine_load_campaigns", str(path), "--generate-copy", "--n", "2", "--no-targets", "--verbosity", "2",
        stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    assert "campaigns: 100%" in err.getvalue() and "2/2" in err.getvalue()
    assert "queueing copy: 100%" in err.getvalue()
    # --verbosity 0: no bar (a campaign's notes stay)
    err = io.StringIO()
    call_command("adengine_load_campaigns", str(path), "--no-targets", "--verbosity", "0", stdout=io.StringIO(),
                 stderr=err)  # fmt: skip
    assert "campaigns:" not in err.getvalue() and "%|" not in err.getvalue()
