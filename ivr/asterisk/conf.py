"""Render Asterisk's configuration from the templates in ``asterisk_conf/`` and the settings.

One set of templates serves every instance: the shipped one (``/etc/asterisk`` in the root) and the
throw-away ones the e2e tests start on free ports beside it. An instance differs only by its
directories (``Layout``) and its settings.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ivr import phone
from ivr.config import REPO_ROOT, ConfigError, Settings

TEMPLATES_DIR = REPO_ROOT / "asterisk_conf"
QUEUES = ("technical", "billing", "commercial")
#: Files holding a secret (the AMI user's): readable by their owner only.
SECRET_FILES = frozenset({"manager.conf", "manager_local.conf", "extensions.conf"})  # AMI secret, AGI key
# Core subsystems that read these files at start; their defaults suit us, so they are written empty
# rather than left missing (which Asterisk logs as an error on every start).
DEFAULTS_ONLY = (
    "acl.conf", "ccss.conf", "cel.conf", "features.conf", "pjproject.conf", "queuerules.conf", "udptl.conf",
)  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """An instance's directories as Asterisk sees them (absolute paths inside the root)."""

    etc: str
    run: str
    log: str
    spool: str
    db: str
    cache: str

    @classmethod
    def shipped(cls) -> Layout:
        """Debian's own layout: the instance `ivr asterisk up` runs."""
        return cls(
            etc="/etc/asterisk",
            run="/run/asterisk",
            log="/var/log/asterisk",
            spool="/var/spool/asterisk",
            db="/var/lib/asterisk",
            cache="/var/cache/asterisk",
        )

    @classmethod
    def private(cls, name: str) -> Layout:
        """A self-contained instance under /srv/sac-ivr/<name>, able to run beside the shipped one."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"instance name {name!r}: expected letters, digits, '.', '_' or '-'")
        base = f"/srv/sac-ivr/{name}"
        return cls(*(f"{base}/{part}" for part in ("etc", "run", "log", "spool", "db", "cache")))

    def all(self) -> tuple[str, ...]:
        return (self.etc, self.run, self.log, self.spool, self.db, self.cache)


def sac_number_forms(e164: str) -> list[str]:
    """Dialplan extensions for every form the SAC number arrives in: as callers dial it (3003-3336 needs
    no area code), with its area code, and each with +55, 55, 0 and 0 + carrier code in front."""
    dialled = phone.normalise(e164)
    if dialled is None or not e164.startswith("+55"):
        raise ConfigError(f"page.sac_number: expected a Brazilian number in E.164 form, got {e164!r}")
    forms: list[str] = []
    for national in dict.fromkeys((dialled, e164[3:])):
        forms += [national, f"+55{national}", f"55{national}", f"0{national}", f"_0XX{national}"]
    return forms


def _check(settings: Settings, ami_secret: str) -> None:
    """Refuse values that would render into a wrong or ambiguous configuration."""
    sip = settings.sip
    addresses = {
        "sip.host": sip.host, "sip.sbc_address": sip.sbc_address, "sip.tester_address": sip.tester_address,
        "agi.host": settings.agi.host, "ami.host": settings.ami.host,
    }  # fmt: skip
    addresses |= {f"sip.agents[{agent.name}].address": agent.address for agent in sip.agents}
    for name, value in addresses.items():
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an IP address (such as 127.0.0.1), got {value!r}") from None
    if sip.sbc_address == sip.tester_address:
        raise ConfigError(
            "sip.sbc_address and sip.tester_address are both "
            f"{sip.sbc_address}: PJSIP could not tell the carrier from a local test caller"
        )
    # PJSIP tells who is calling by source address: each agent's phone needs one of its own.
    seen = {sip.sbc_address: "sip.sbc_address", sip.tester_address: "sip.tester_address"}
    for agent in sip.agents:
        name = f"sip.agents[{agent.name}].address"
        if agent.address in seen:
            raise ConfigError(f"{name} is {agent.address}, as {seen[agent.address]}: PJSIP could not tell them apart")
        seen[agent.address] = name
    if settings.asterisk.fallback_queue not in QUEUES:
        raise ConfigError(f"asterisk.fallback_queue: expected one of {', '.join(QUEUES)}")
    if not ami_secret:
        raise ConfigError("ami.secret is empty: set IVR_AMI__SECRET (or let provisioning generate one)")
    # ';' starts a comment in Asterisk's files and a line break would start a new setting.
    for name, value in (("ami.secret", ami_secret), ("ami.username", settings.ami.username)):
        if re.search(r"[;\r\n\[\]]", value) or value != value.strip():
            raise ConfigError(f"{name}: must not contain ';', brackets, line breaks or edge spaces")


def render(
    settings: Settings, layout: Layout, ami_secret: str, agi_key: str, moh_dir: str, modules_dir: str
) -> dict[str, str]:
    """File name -> text of every configuration file the instance needs."""
    _check(settings, ami_secret)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Asterisk configuration, not HTML
    )
    sip = settings.sip
    context = {
        "dirs": {**layout.__dict__, "modules": modules_dir},
        "sip": sip,
        "agi": settings.agi,
        "ami": settings.ami,
        "ami_secret": ami_secret,
        "agi_key": agi_key,
        "agent_channel_vars": settings.asterisk.agent_channel_vars,
        "moh_dir": moh_dir,
        "sac_forms": sac_number_forms(settings.page.sac_number),
        "transfer_numbers": [phone.for_trunk(settings.page.negotiation_number, sip.trunk_number_format)],
        "transfer_ring_s": 60,
        "max_call_s": settings.asterisk.max_call_s,
        "fallback_queue": settings.asterisk.fallback_queue,
        "queue_wait_s": settings.asterisk.queue_wait_s,
        "queues": QUEUES,
        "sound_prefix": settings.agi.sound_prefix,
    }
    rendered = {name: "; sac-ivr: Asterisk's defaults apply.\n" for name in DEFAULTS_ONLY}
    for template in sorted(TEMPLATES_DIR.glob("*.conf.j2")):
        name = template.name.removesuffix(".j2")
        rendered[name] = env.get_template(template.name).render(context)
    return rendered


def write(etc_dir: Path, files: dict[str, str]) -> None:
    """Make ``etc_dir`` hold exactly ``files``: the stock samples go, so only our configuration counts."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    for entry in etc_dir.iterdir():
        if entry.name not in files:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for name, text in files.items():
        path = etc_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.unlink(missing_ok=True)
        # Created with its final mode before a byte is written: manager.conf's secret is never readable by
        # others, not even for the moment between writing and a chmod.
        mode = 0o600 if name in SECRET_FILES else 0o640
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w", encoding="utf-8") as out:
            out.write(text)
        tmp.chmod(mode)  # exactly this mode, whatever the umask took away
        tmp.replace(path)
