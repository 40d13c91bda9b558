# The image of every project service in docker-compose.yml: Flink's JobManager and
# TaskManager, the job submitter, the sandbox tool service, the action sink.
#
# Flink itself comes from the official image (its /opt/flink distribution, JRE and
# entrypoint); the base is Python 3.11 because the project requires it and the
# official image's Ubuntu ships 3.12. The Flink version must equal the apache-flink
# version pinned in pyproject.toml (tests/test_compose.py checks it).
#
#   docker compose build        (context: the repository root)
ARG FLINK_IMAGE=flink:2.2.1-scala_2.12-java17
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${FLINK_IMAGE} AS flink

# The Kafka connector jar, fetched with Maven from infra/pom.xml (the same pin as infra/fetch.sh).
FROM maven:3.9-eclipse-temurin-17 AS jars
COPY infra/pom.xml /build/infra/pom.xml
RUN mvn -q -B -f /build/infra/pom.xml -P flink dependency:copy-dependencies -DoutputDirectory=/jars

FROM ${PYTHON_IMAGE}
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends gettext-base libjemalloc-dev libsnappy1v5 curl; \
    rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/opt/java/openjdk \
    FLINK_HOME=/opt/flink \
    PYTHONUNBUFFERED=1
ENV PATH=$FLINK_HOME/bin:$JAVA_HOME/bin:$PATH
COPY --from=flink /opt/java/openjdk /opt/java/openjdk
RUN groupadd --system --gid=9999 flink && \
    useradd --system --home-dir $FLINK_HOME --uid=9999 --gid=flink flink
COPY --from=flink --chown=flink:flink /opt/flink /opt/flink
COPY --from=flink /docker-entrypoint.sh /docker-entrypoint.sh
# Our configuration replaces the distribution's; compose overrides the environment-specific
# keys (addresses, bind hosts, python.executable, directories) through FLINK_PROPERTIES.
COPY --chown=flink:flink flink-conf/config.yaml /opt/flink/conf/config.yaml

# The project, installed (console scripts, dependencies incl. apache-flink) and as source:
# `flink run -py /opt/app/jobs/agent_job.py` ships /opt/app/{contracts,jobs,sinks} to the workers.
WORKDIR /opt/app
COPY pyproject.toml ./
COPY contracts contracts
COPY jobs jobs
COPY sinks sinks
COPY examples examples
RUN pip install --no-cache-dir /opt/app
# The job's default connector path (REPO/.infra/jars/flink/*.jar), as in a checkout.
COPY --from=jars /jars/ /opt/app/.infra/jars/flink/
# Named volumes mounted here start with these owners.
RUN mkdir -p /flink-data /data && chown -R flink:flink /flink-data /data /opt/app

USER flink
ENTRYPOINT ["/docker-entrypoint.sh"]
EXPOSE 6123 8081 9249
CMD ["help"]
