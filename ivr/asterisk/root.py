"""The Debian-unstable tree Asterisk 22 runs in, and what we install into it.

Debian 12 ships no Asterisk, unstable does: ``debootstrap`` builds a minimal unstable root once per
machine (cached outside the clone, about 500 MB, under a minute), from the mirror the machine's own
apt sources name. ``provision`` then makes the root ours: our rendered configuration replaces the stock
samples, the prompts go where ``STREAM FILE sac/pt_BR/<id>`` finds them (and our number fragments where
Asterisk's own pt_BR number saying looks), and the recordings directory is created where the IVR reads
what ``RECORD FILE`` wrote.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.asterisk import conf
from ivr.config import Settings, cache_dir

log = logging.getLogger(__name__)

REQUIRED_MAJOR = 22
PACKAGES = ("asterisk", "asterisk-modules")
SOUNDS_DIR = "usr/share/asterisk/sounds"  # astdatadir/sounds, relative to the root
#: The calls' language (asterisk.conf defaultlanguage): Asterisk looks for <sounds>/pt_BR/<file> first.
LANGUAGE = "pt_BR"
MOH_DIR = "/var/lib/asterisk/moh/sac"
BUILD_TIMEOUT_S = 900


class RootError(RuntimeError):
    """The Asterisk root cannot be built or is not usable; the message says what to do."""


@dataclass(frozen=True)
class Provisioned:
    root: Path
    version: str
    layout: conf.Layout
    prompts: int  # prompt files installed (0 when the prompts are not built yet)


# --- building the cached root -------------------------------------------------------------------


def apt_mirror() -> str:
    """The machine's own Debian mirror: the first non-security ``deb`` source apt is configured with."""
    out = _run(["apt-config", "shell", "LIST", "Dir::Etc::sourcelist/f", "PARTS", "Dir::Etc::sourceparts/d"])
    paths = dict(re.findall(r"^(LIST|PARTS)='([^']*)'$", out, re.MULTILINE))
    files: list[Path] = []
    if paths.get("LIST"):
        files.append(Path(paths["LIST"]))
    if paths.get("PARTS") and Path(paths["PARTS"]).is_dir():
        parts = Path(paths["PARTS"])
        files += sorted([*parts.glob("*.sources"), *parts.glob("*.list")])
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = _mirror_from_deb822(text) if path.suffix == ".sources" else _mirror_from_list(text)
        if found:
            return found
    raise RootError(
        "no Debian mirror found in apt's sources (apt-config Dir::Etc::sourcelist/sourceparts); "
        "set IVR_ASTERISK__MIRROR to a Debian mirror URL"
    )


def _mirror_from_deb822(text: str) -> str | None:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        if suites and all(s.endswith("-security") for s in suites):
            continue
        uris = fields.get("uris", "").split()
        if uris:
            return uris[0]
    return None


def _mirror_from_list(text: str) -> str | None:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and not words[2].endswith("-security"):
            return words[1]
    return None


def build(settings: Settings) -> Path:
    """Build the root with debootstrap unless it exists; a half-built tree is never left in its place."""
    root = settings.asterisk_root
    if (root / "usr/sbin/asterisk").exists():
        return root
    if os.geteuid() != 0:
        raise RootError(f"building the Asterisk root ({root}) with debootstrap needs root")
    if shutil.which("debootstrap") is None:
        raise RootError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = settings.asterisk.mirror or apt_mirror()
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    root.parent.mkdir(parents=True, exist_ok=True)
    log_path = root.with_name(root.name + ".debootstrap.log")
    log.info("building the Asterisk root in %s from %s (%s); log: %s", root, mirror, settings.asterisk.suite,
             log_path)
    command = [
        "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
        settings.asterisk.suite, str(partial), mirror,
    ]  # fmt: skip
    with log_path.open("w", encoding="utf-8") as out:
        try:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise RootError(f"debootstrap took over {BUILD_TIMEOUT_S} s; see {log_path}") from exc
    if done.returncode != 0:
        raise RootError(f"debootstrap failed (exit {done.returncode}); see {log_path}")
    partial.rename(root)
    return root


def asterisk_version(root: Path) -> str:
    """``asterisk -V`` inside the root; fails unless it is Asterisk 22."""
    try:
        out = _run(["chroot", str(root), "/usr/sbin/asterisk", "-V"]).strip()
    except RootError as exc:
        raise RootError(f"{root}: cannot run asterisk -V in the root ({exc})") from exc
    match = re.match(r"Asterisk (\d+)\.", out)
    if not match or int(match.group(1)) != REQUIRED_MAJOR:
        raise RootError(
            f"{root}: `asterisk -V` says {out!r}; sac-ivr needs Asterisk {REQUIRED_MAJOR}.x. "
            "Remove the root to rebuild it from Debian unstable, or point "
            "IVR_ASTERISK__ROOT at one with Asterisk 22"
        )
    return out


def modules_dir(root: Path) -> str:
    """Asterisk's module directory inside the root (multiarch path)."""
    found = sorted(root.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise RootError(f"{root}: no usr/lib/<arch>/asterisk/modules; is asterisk-modules installed?")
    return "/" + str(found[0].relative_to(root))


# --- installing our files -----------------------------------------------------------------------


def ami_secret(settings: Settings) -> str:
    """The AMI secret: the configured one, else a random one generated once per machine (mode 0600)."""
    return _install_secret(settings.ami.secret.get_secret_value(), "ami-secret")


def agi_secret(settings: Settings) -> str:
    """The key the dialplan's AGI URL carries and `ivr serve` asks for: the configured one, else a random
    one generated once per machine (mode 0600)."""
    return _install_secret(settings.agi.secret.get_secret_value(), "agi-secret")


def _install_secret(configured: str, name: str) -> str:
    if configured:
        return configured
    path = cache_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def prompts_target(settings: Settings) -> Path:
    """Where the prompts go in the root, so that ``sac/pt_BR/<id>`` names them."""
    return settings.asterisk_root / SOUNDS_DIR / settings.agi.sound_prefix


def install_prompts(settings: Settings) -> int:
    """Copy the built prompt audio into the root (replacing the previous set); returns the file count."""
    source = settings.prompts_dir / "audio"
    target = prompts_target(settings)
    files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else []
    if not files:
        log.warning("no prompt audio in %s: run `ivr prompts build`; calls will be silent", source)
        return 0
    staging = target.with_name(target.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return len(files)


def asterisk_say_files() -> dict[str, str]:
    """The files Asterisk's own number saying plays in Portuguese (main/say.c, ast_say_number_full_pt),
    each made of one of our built fragments: app_queue says a caller's place in line with them.

    Debian has no pt_BR sounds; without these, a Portuguese caller would hear the English ones."""
    files = {f"digits/{n}": f"num/{n}" for n in [*range(20), *range(20, 100, 10), 100, *range(200, 1000, 100)]}
    files |= {f"digits/{n}F": f"num/{n}_f" for n in [1, 2, *range(200, 1000, 100)]}
    files |= {
        "digits/100E": "num/cento",  # 101 to 199
        "digits/1000": "num/mil",
        "digits/1000000": "num/milhao",
        "digits/1000000S": "num/milhoes",
        "digits/pt-e": "word/e",
        "digits/minus": "word/menos",
    }
    return files


def install_say_files(settings: Settings) -> int:
    """Install `asterisk_say_files` under the calls' language from the built prompts; returns the count."""
    source = settings.prompts_dir / "audio"
    target = settings.asterisk_root / SOUNDS_DIR / LANGUAGE
    installed = 0
    for name, fragment in asterisk_say_files().items():
        for built in sorted(source.glob(f"{fragment}.*")):
            path = target / f"{name}{built.suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(built, path)
            installed += 1
    return installed


def install_hold_music(root: Path) -> None:
    """Hold music: a soft chime every four seconds, a minute per file (Debian's MOH files are not installed)."""
    moh = root / MOH_DIR.lstrip("/")
    if any(moh.glob("chime.*")):
        return
    moh.mkdir(parents=True, exist_ok=True)
    for ext, encoding in (("alaw", "a-law"), ("ulaw", "u-law")):
        _run([
            "sox", "-n", "-r", "8000", "-c", "1", "-t", "raw", "-e", encoding, str(moh / f"chime.{ext}"),
            "synth", "0.6", "sine", "660", "sine", "880", "remix", "-", "fade", "0.02", "0.6", "0.4",
            "vol", "0.25", "pad", "0", "3.4", "repeat", "14",
        ])  # fmt: skip


def install_beep(root: Path) -> None:
    """The tone RECORD FILE's BEEP option plays ("beep" in the call's language): Debian ships it only
    among the English GSM sounds, which pt_BR calls do not reach. Ours sits at the top of the sounds
    directory, where every language falls back to."""
    sounds = root / SOUNDS_DIR
    if any(sounds.glob("beep.*")):
        return
    for ext, encoding in (("alaw", "a-law"), ("ulaw", "u-law")):
        _run([
            "sox", "-n", "-r", "8000", "-c", "1", "-t", "raw", "-e", encoding, str(sounds / f"beep.{ext}"),
            "synth", "0.25", "sine", "1000", "fade", "0.01", "0.25", "0.01", "vol", "0.5",
        ])  # fmt: skip


def install_config(settings: Settings, layout: conf.Layout, extra: dict[str, str] | None = None) -> None:
    """Render our configuration into the instance's etc directory and create its other directories."""
    root = settings.asterisk_root
    files = conf.render(settings, layout, ami_secret(settings), agi_secret(settings), MOH_DIR, modules_dir(root))
    files.update(extra or {})
    for directory in (*layout.all(), f"{layout.log}/cdr-custom"):
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    conf.write(root / layout.etc.lstrip("/"), files)


def provision(
    settings: Settings, layout: conf.Layout | None = None, extra: dict[str, str] | None = None
) -> Provisioned:
    """Build or reuse the root, check it is Asterisk 22, and install our configuration and files."""
    layout = layout or conf.Layout.shipped()
    root = build(settings)
    version = asterisk_version(root)
    install_config(settings, layout, extra)
    prompts = install_prompts(settings)
    install_say_files(settings)
    install_hold_music(root)
    install_beep(root)
    # RECORD FILE writes here; the IVR reads the same files through settings.recordings_path.
    (root / settings.asterisk.recordings_dir_in_asterisk.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return Provisioned(root=root, version=version, layout=layout, prompts=prompts)


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise RootError(f"{command[0]} is not installed") from exc
    if done.returncode != 0:
        detail = done.stderr.strip()[-400:]
        raise RootError(f"{' '.join(command[:3])}... failed (exit {done.returncode}): {detail}")
    return done.stdout
