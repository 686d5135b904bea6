"""Is this process's DDS participant reachable from another host? The piloting nodes ask before they start.

Anything that can reach the DDS graph can publish cmd_vel or call arm/takeoff: DDS has no notion of a
trusted sender unless DDS Security is on, and the Fast DDS of the ROS 2 wheels is built without its
plugins (no "builtin.PKI-DH" in libfastdds; its messages say "security is disabled"). So the only
boundary is the transport: a participant whose every transport is shared memory opens no socket and
cannot be reached from another machine. The follow controller refuses to start otherwise, and the
Olympe bridge then offers video only (no cmd_vel, arm, takeoff, land). Stdlib only: the bridge runs
this in Olympe's virtualenv too.
"""

from __future__ import annotations

import mmap
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

CONFINED_RMW = "rmw_fastrtps_cpp"
# Loaded by Fast DDS from the working directory in addition to FASTDDS_DEFAULT_PROFILES_FILE.
CWD_PROFILES = ("DEFAULT_FASTDDS_PROFILES.xml", "DEFAULT_FASTRTPS_PROFILES.xml")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if isinstance(c.tag, str) and _local(c.tag) == name]


def _profile_exposure(path: Path) -> str | None:
    """Why the default participant of this Fast DDS XML profile can use the network; None if SHM only."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return f"Fast DDS profile {path} unreadable ({exc}): Fast DDS would fall back to UDP on every interface"
    transports = {}
    participants = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if _local(el.tag) == "transport_descriptor":
            ids, types = _children(el, "transport_id"), _children(el, "type")
            if ids:
                transports[(ids[0].text or "").strip()] = (types[0].text or "").strip() if types else ""
        elif _local(el.tag) == "participant" and el.get("is_default_profile", "").lower() == "true":
            participants.append(el)
    if len(participants) != 1:
        return f"{path} has {len(participants)} default participant profiles, not one"
    rtps = _children(participants[0], "rtps")
    builtin = [e for r in rtps for e in _children(r, "useBuiltinTransports")]
    if not builtin or (builtin[0].text or "").strip().lower() != "false":
        return f"{path}: the default participant keeps Fast DDS's builtin transports (UDPv4 on every interface)"
    used = [(t.text or "").strip() for r in rtps for u in _children(r, "userTransports") for t in u]
    if not used:
        return f"{path}: the default participant has no user transport"
    for tid in used:
        kind = transports.get(tid)
        if kind != "SHM":
            return f"{path}: transport {tid!r} is {kind or 'undeclared'}, a network transport"
    return None


def exposure(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Why a participant created with this environment could be reached from another host; None if it cannot."""
    env = os.environ if env is None else env
    rmw = env.get("RMW_IMPLEMENTATION", "") or CONFINED_RMW
    if rmw != CONFINED_RMW:
        return f"RMW_IMPLEMENTATION={rmw}: only {CONFINED_RMW} with a shared-memory-only profile is known confined"
    builtin = env.get("FASTDDS_BUILTIN_TRANSPORTS", "")
    if builtin and builtin.upper() != "SHM":
        return f"FASTDDS_BUILTIN_TRANSPORTS={builtin} adds network transports"
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST":
        # Measured: rmw_fastrtps then adds UDPv4 sockets bound to 0.0.0.0, whatever the XML profile says.
        return "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST makes rmw_fastrtps open UDP sockets on every address"
    if env.get("ROS_DISCOVERY_SERVER"):
        return "ROS_DISCOVERY_SERVER is set: Fast DDS then talks UDP to the discovery server"
    for name in CWD_PROFILES:
        if (Path.cwd() if cwd is None else cwd).joinpath(name).exists():
            return f"{name} in the working directory is loaded by Fast DDS too and may open the network"
    profile = env.get("FASTDDS_DEFAULT_PROFILES_FILE") or env.get("FASTRTPS_DEFAULT_PROFILES_FILE")
    if not profile:
        return "no Fast DDS profile (FASTDDS_DEFAULT_PROFILES_FILE): the default participant has UDP on every interface"
    return _profile_exposure(Path(profile))


def _fastdds_libraries() -> list[Path]:
    dirs = [Path(sys.prefix) / "lib"]
    dirs += [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    dirs += [Path(p) / "lib" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    seen, libs = set(), []
    for d in dirs:
        for lib in sorted(d.glob("libfastdds.so*")) if d.is_dir() else []:
            real = lib.resolve()
            if real not in seen:
                seen.add(real)
                libs.append(real)
    return libs


def security_plugins() -> bool | None:
    """Whether the Fast DDS library carries the DDS Security builtin plugins; None when it was not found."""
    libs = _fastdds_libraries()
    if not libs:
        return None
    for lib in libs:
        with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m.find(b"builtin.PKI-DH") < 0:
                return False
    return True


def piloting_refusal(env: Mapping[str, str] | None = None) -> str | None:
    """Why piloting must not be offered over this DDS setup (one sentence), or None when it is confined."""
    reason = exposure(env)
    if reason is None:
        return None
    plugins = security_plugins()
    security = {
        False: "this Fast DDS is built without the DDS Security plugins, so no authentication can close it",
        None: "DDS Security is not supported by this project's setup",
        True: "DDS Security (authenticated piloting) is not supported by this project's setup",
    }[plugins]
    return (
        f"DDS is reachable from other hosts ({reason}); {security}. Piloting is only offered with the "
        "shared-memory-only profile (launch argument network:=localhost, launch/fastdds_localhost.xml)"
    )
