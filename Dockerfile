# The service's production image: `ledger serve` against LEDGER_DATABASE_URL.
# Migrations run on start only when LEDGER_MIGRATE_ON_START=1.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY api ./api
COPY sql ./sql
COPY scripts/ops ./scripts/ops
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000 \
    LEDGER_DATA_DIR=/home/ledger/data
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ledger
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/ledger
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LEDGER_PORT', '8000') + '/healthz', timeout=2)"]
CMD ["ledger", "serve"]
