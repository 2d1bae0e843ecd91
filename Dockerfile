# opslib: run a runbook headless from a scheduler (Kubernetes CronJob/Job, Argo, Airflow's
# KubernetesPodOperator). Core install only: no JupyterLab, no sandbox. The image's
# ENTRYPOINT is `opslib`, so a Job's args are `run RUNBOOK -f params.yaml --evidence-dir s3://...`.
# Built on machines with a container runtime; tests/unit/test_dockerfile.py checks it parses
# and that its install command resolves in a plain venv.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/core.txt ./requirements/core.txt
COPY opslib ./opslib
# the locked core set (exact versions, hashes checked), then opslib itself without dependencies
RUN python -m venv /opt/opslib \
    && /opt/opslib/bin/pip install --require-hashes -r requirements/core.txt \
    && /opt/opslib/bin/pip install --no-deps .

FROM python:3.11-slim
ENV PATH=/opt/opslib/bin:$PATH \
    OPSLIB_NOTEBOOKS=/opt/opslib/notebooks \
    OPSLIB_HEADLESS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/opslib
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/opslib opslib
COPY --from=build /opt/opslib /opt/opslib
COPY notebooks /opt/opslib/notebooks
USER 10001:10001
WORKDIR /home/opslib
ENTRYPOINT ["opslib"]
CMD ["list"]
