"""The peer (scylladb/kafka-connect-scylladb): what the benchmark needs of its build (README.md here)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUILD_HINT", "REQUIRED_JARS", "missing_artifacts"]

# The connector and the driver it was built against (4.18.x or 4.17.x: the 4.19 driver is not on
# Maven Central), as the unpacked plugin folder holds them.
REQUIRED_JARS = ("kafka-connect-scylladb-*.jar", "java-driver-core-4.1[78].*.jar", "guava-*.jar")
BUILD_HINT = (
    "build scylladb/kafka-connect-scylladb with Maven (bench/peer/README.md: the pom change, the mvn "
    "command, the unzip) and pass the unpacked plugin folder"
)


def missing_artifacts(plugin_dir: Path) -> list[str]:
    """The jars of REQUIRED_JARS that ``plugin_dir`` (or its lib/ folder) lacks."""
    folders = [plugin_dir, plugin_dir / "lib"]
    return [
        pattern for pattern in REQUIRED_JARS if not any(f.is_dir() and any(f.glob(pattern)) for f in folders)
    ]
