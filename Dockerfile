# One image for the four services; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY mentoring ./mentoring
RUN pip install . && useradd --create-home --uid 10001 mentoring
USER mentoring
# Matching's solver is compiled by numba: compiled once here into a cache the user owns, so
# that no container spends its first bulk run compiling it.
ENV NUMBA_CACHE_DIR=/home/mentoring/.cache/numba
RUN python -c "from services.matching.domain.augment import warm_up; warm_up()"
ENV BIND_HOST=0.0.0.0
EXPOSE 50051 50052 50053 50054 9101 9102 9103 9104
CMD ["mentoring", "--help"]
