# The aiwatch worker image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /opt/aiwatch
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY collectors ./collectors
COPY detectors ./detectors
COPY streams ./streams
COPY infra ./infra
RUN pip install --no-cache-dir -e . && useradd --system --home /var/lib/aiwatch aiwatch \
    && mkdir -p /var/lib/aiwatch && chown aiwatch /var/lib/aiwatch
USER aiwatch
ENV AIWATCH_HOME=/var/lib/aiwatch AIWATCH_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["aiwatch"]
CMD ["worker"]
