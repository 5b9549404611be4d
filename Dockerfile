# One image for the four services; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY mentoring ./mentoring
RUN pip install . && useradd --create-home --uid 10001 mentoring
USER mentoring
ENV BIND_HOST=0.0.0.0
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104
CMD ["mentoring", "--help"]
