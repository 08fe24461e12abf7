"""Installs what the native stack runs: Maven bundles into the cache and Debian packages via apt.

    paths = install_all(StackPaths.of(settings.stack), load_versions())
    paths["kafka"]   # cache_dir/artifacts/kafka-<digest>/ with every jar of the broker and Connect

Each Maven bundle is one ``compose/maven/NAME/pom.xml`` run with versions from ``versions.yaml``. Its
directory name carries a digest of the POM, the versions and the goal, so a version bump installs
next to the old one instead of mixing jars; a ``.installed`` marker written last makes a second `up`
download nothing, and an interrupted install (no marker) is redone from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from compose.native.exceptions import InstallError
from compose.native.paths import StackPaths
from compose.versions import COMPOSE_DIR, Versions

__all__ = ["BUNDLES", "MavenBundle", "bundle_dir", "ensure_apt_packages", "install_all", "install_bundle"]

log = structlog.get_logger(__name__)

MAVEN_DIR = COMPOSE_DIR / "maven"
MARKER = ".installed"


@dataclass(frozen=True)
class MavenBundle:
    name: str
    goal: str
    # Extra -D flags for the goal (e.g. includeScope); versions are added from versions.yaml.
    flags: Mapping[str, str] = field(default_factory=dict)
    # Where under the bundle directory the goal writes: Kafka Connect wants each plugin in its own
    # folder below a plugin.path entry.
    subdir: str = ""
    # Which versions.yaml key pins maven-dependency-plugin for this bundle.
    plugin_version_key: str = "maven_dependency_plugin"

    @property
    def pom(self) -> Path:
        return MAVEN_DIR / self.name / "pom.xml"


BUNDLES: tuple[MavenBundle, ...] = (
    MavenBundle("kafka", "dependency:copy-dependencies", {"includeScope": "runtime"}),
    MavenBundle("cassandra", "dependency:copy-dependencies", {"includeScope": "runtime"}),
    MavenBundle("debezium-postgres", "dependency:unpack"),
    MavenBundle("apicurio-converter", "dependency:copy-dependencies", subdir="apicurio-converter"),
    MavenBundle("jmx-exporter", "dependency:copy"),
    MavenBundle(
        "apicurio-registry",
        "dependency:unpack",
        plugin_version_key="maven_dependency_plugin_no_descriptor",
    ),
)


def _properties(bundle: MavenBundle, versions: Versions) -> dict[str, str]:
    props = versions.maven_properties()
    props["maven-dependency-plugin.version"] = str(getattr(versions, bundle.plugin_version_key))
    return props | dict(bundle.flags)


def bundle_dir(paths: StackPaths, versions: Versions, bundle: MavenBundle) -> Path:
    spec = json.dumps(
        {
            "pom": bundle.pom.read_text(encoding="utf-8"),
            "goal": bundle.goal,
            "props": _properties(bundle, versions),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return paths.artifacts / f"{bundle.name}-{digest}"


def install_bundle(paths: StackPaths, versions: Versions, bundle: MavenBundle) -> Path:
    target = bundle_dir(paths, versions, bundle)
    if (target / MARKER).exists():
        return target
    if shutil.which("mvn") is None:
        raise InstallError(
            "mvn is not on PATH; install Maven (apt-get install maven) and rerun `scv stack up`"
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    out = partial / bundle.subdir if bundle.subdir else partial
    out.mkdir(parents=True)
    cmd = [
        "mvn", "-B", "-q", "-f", str(bundle.pom),
        *(f"-D{k}={v}" for k, v in _properties(bundle, versions).items()),
        f"-DoutputDirectory={out}",
        # unpack records what it unpacked in marker files, by default under the POM's target/ (in the
        # source tree, and surviving a cache wipe, which made a re-install silently unpack nothing);
        # the unpack POMs take the directory from this property instead.
        f"-Dmarkers.dir={partial / '.markers'}",
        bundle.goal,
    ]  # fmt: skip
    log.info("maven_install_started", bundle=bundle.name, target=str(target))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise InstallError(
            f"Maven could not install bundle {bundle.name!r} from {bundle.pom} "
            f"(versions from compose/versions.yaml):\n{tail}\n"
            "Check that the pinned versions exist on Maven Central and that ~/.m2 is writable."
        )
    (partial / MARKER).write_text(" ".join(cmd) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log.info("maven_install_done", bundle=bundle.name)
    return target


def _missing_debs(packages: Mapping[str, str]) -> list[str]:
    """Debian packages whose marker file is absent (a file check is fast enough for every `up`)."""
    return [pkg for pkg, marker in packages.items() if not Path(marker).exists()]


def ensure_apt_packages(packages: Mapping[str, str]) -> None:
    """Install the Debian packages (name -> a file it installs) that are missing, and nothing else."""
    missing = _missing_debs(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise InstallError(
            f"missing Debian packages {missing}; run as root or `apt-get install -y {' '.join(missing)}`"
        )
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    # Packages must not start their own services (a Debian PostgreSQL cluster or prometheus.service
    # would take the stack's ports): policy-rc.d exit 101 is Debian's switch for that, and
    # create_main_cluster=false stops postgresql-common from creating a cluster at all.
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    cluster_conf = Path("/etc/postgresql-common/createcluster.d/scv-no-main-cluster.conf")
    try:
        if own_policy:
            policy.write_text(
                "#!/bin/sh\n# written by scv stack for the duration of apt-get install\nexit 101\n"
            )
            policy.chmod(0o755)
        cluster_conf.parent.mkdir(parents=True, exist_ok=True)
        cluster_conf.write_text("create_main_cluster = false\n")
        log.info("apt_install_started", packages=missing)
        for cmd in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
                raise InstallError(f"`{' '.join(cmd)}` failed:\n{tail}")
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    still = _missing_debs(packages)
    if still:
        raise InstallError(
            f"apt-get reported success but {still} are still missing; check `dpkg -l {' '.join(still)}`"
        )


def install_all(paths: StackPaths, versions: Versions) -> dict[str, Path]:
    """Everything the stack needs; returns each Maven bundle's directory by bundle name."""
    ensure_apt_packages(
        {
            f"postgresql-{versions.postgres}": f"/usr/lib/postgresql/{versions.postgres}/bin/postgres",
            "prometheus": "/usr/bin/prometheus",
            "maven": "/usr/bin/mvn",
            "openjdk-17-jre-headless": "/usr/bin/java",
        }
    )
    paths.artifacts.mkdir(parents=True, exist_ok=True)
    return {b.name: install_bundle(paths, versions, b) for b in BUNDLES}
