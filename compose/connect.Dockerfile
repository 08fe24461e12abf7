# Kafka Connect with Debezium plus the Apicurio Avro converter, assembled by the same
# compose/maven/apicurio-converter/pom.xml the native stack uses. Versions arrive as build arguments
# from docker-compose.yml, which tests/unit/test_compose_consistency.py checks against versions.yaml.
ARG DEBEZIUM_VERSION
FROM maven:3.9-eclipse-temurin-17 AS converter
ARG APICURIO_CONVERTER_VERSION
ARG MAVEN_DEPENDENCY_PLUGIN_VERSION
COPY compose/maven/apicurio-converter/pom.xml /build/pom.xml
RUN mvn -B -q -f /build/pom.xml \
      -Dapicurio-converter.version=${APICURIO_CONVERTER_VERSION} \
      -Dmaven-dependency-plugin.version=${MAVEN_DEPENDENCY_PLUGIN_VERSION} \
      -DoutputDirectory=/plugins/apicurio-converter \
      dependency:copy-dependencies

FROM quay.io/debezium/connect:${DEBEZIUM_VERSION}
COPY --from=converter /plugins/apicurio-converter /kafka/connect/apicurio-converter
