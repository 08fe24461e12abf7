# Kafka Connect with Debezium plus the Apicurio Avro converter, assembled by the same
# compose/maven/apicurio-converter/pom.xml the native stack uses. Every ARG defaults to the pinned
# version (compose/versions.yaml); docker-compose.yml passes the same values, and
# tests/unit/test_dockerfiles.py checks both.
ARG DEBEZIUM_VERSION=3.5.0.Final

# A pinned Maven image: the build resolves the converter the same way on every machine.
FROM maven:3.9.9-eclipse-temurin-17 AS converter
ARG APICURIO_CONVERTER_VERSION=2.6.13.Final
ARG MAVEN_DEPENDENCY_PLUGIN_VERSION=3.8.1
COPY compose/maven/apicurio-converter/pom.xml /build/pom.xml
RUN mvn -B -q -f /build/pom.xml \
      -Dapicurio-converter.version=${APICURIO_CONVERTER_VERSION} \
      -Dmaven-dependency-plugin.version=${MAVEN_DEPENDENCY_PLUGIN_VERSION} \
      -DoutputDirectory=/plugins/apicurio-converter \
      dependency:copy-dependencies

FROM quay.io/debezium/connect:${DEBEZIUM_VERSION}
COPY --from=converter /plugins/apicurio-converter /kafka/connect/apicurio-converter
# The mount point of the connect-secrets volume, owned by the worker's user: an empty named volume
# takes the ownership of the folder it is first mounted on, so whichever of this image and the scv
# image (same uid) mounts it first, the worker can read what `scv sources add` writes.
USER root
RUN install -d -o kafka -g kafka -m 0700 /var/lib/scv/secrets/connect
USER kafka
