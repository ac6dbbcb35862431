"""Make the interface's catalogs anew from the code (every language but English) and compile them; --check
only says whether they are complete and compiled, for CI: a new string without a translation fails it."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DOMAINS = ("django", "djangojs")
# What holds the interface's strings (the admin's templates use Django's own translations).
SOURCES = ("manage.py", "project", "chat", "bots", "templates", "static/chat", "locale")
IGNORED = ("templates/admin/*", "node_modules", "staticfiles", "tests")


def make(root, languages):
    """Run makemessages in root for the languages, both domains: the code's new strings are added
    untranslated, changed ones marked fuzzy, gone ones dropped."""
    for domain in DOMAINS:
        command = [sys.executable, "manage.py", "makemessages", "-d", domain, "--no-location", "--no-obsolete", "-v0"]
        command += [f"--ignore={pattern}" for pattern in IGNORED] + [f"--locale={code}" for code in languages]
        subprocess.run(command, cwd=root, check=True)


def catalogs(root):
    """Every .po file under root's locale directory."""
    return sorted((Path(root) / "locale").glob("*/LC_MESSAGES/*.po"))


def problems(po):
    """The message ids of po that are untranslated or fuzzy, as lines saying which."""
    found = []
    for option, what in (("--untranslated", "untranslated"), ("--only-fuzzy", "fuzzy")):
        listed = subprocess.run(["msgattrib", option, "--no-obsolete", "--no-wrap", str(po)], check=True, capture_output=True, text=True).stdout
        for line in listed.splitlines():
            if line.startswith("msgid ") and line != 'msgid ""':
                found.append(f"{po.parent.parent.name}/{po.stem}: {what}: {line[6:]}")
    return found


def stale_compiled(po):
    """Whether po's .mo beside it is missing or not what msgfmt makes of it now."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "fresh.mo"
        subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(po)], check=True)
        compiled = po.with_suffix(".mo")
        return not compiled.exists() or compiled.read_bytes() != fresh.read_bytes()


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="change nothing; fail on an untranslated, fuzzy or uncompiled message")

    def handle(self, *args, check=False, **options):
        for tool in ("xgettext", "msgattrib", "msgfmt"):
            if shutil.which(tool) is None:
                raise CommandError(f"{tool} is missing: install GNU gettext (Debian: apt-get install gettext).")
        base = Path(settings.BASE_DIR)
        languages = [code for code, _name in settings.LANGUAGES if code != "en"]
        if not check:
            make(base, languages)
            for po in catalogs(base):
                subprocess.run(["msgfmt", "--check-format", "-o", str(po.with_suffix(".mo")), str(po)], check=True)
            self.stdout.write("Catalogs made and compiled: translate what is new in them (msgstr), then run this again.")
            return
        # Made anew in a copy, so the check sees the code's strings without touching the tree.
        with tempfile.TemporaryDirectory() as scratch:
            for source in SOURCES:
                copy = shutil.copytree if (base / source).is_dir() else shutil.copy2
                (Path(scratch) / source).parent.mkdir(parents=True, exist_ok=True)
                copy(base / source, Path(scratch) / source)
            make(scratch, languages)
            found = [line for po in catalogs(scratch) for line in problems(po)]
        found += [f"{po.relative_to(base)}: its .mo is not compiled from it" for po in catalogs(base) if stale_compiled(po)]
        missing = [code for code in languages if not (base / "locale" / code / "LC_MESSAGES" / "django.po").exists()]
        found += [f"{code}: no catalog (locale/{code}/LC_MESSAGES/django.po)" for code in missing]
        if found:
            raise CommandError("The catalogs are not complete; run ./parley manage translations and translate:\n" + "\n".join(found))
        self.stdout.write(f"Catalogs complete and compiled: {', '.join(languages)}.")
