# One image for every SalesPulse role (docs/deploy.md): Spark master and workers, the stream driver, the simulator
# and the dashboard under gunicorn. The role is the command; without one the image prints `salespulse --help`.
#   docker build -t salespulse .
# bookworm pinned: Spark 4 needs Java 17, which newer Debian releases no longer package.
FROM python:3.11-slim-bookworm

# procps: Spark's launch scripts and docker/submit-stream.sh use ps/pgrep.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

# The same user id in every container, so the shared volumes (landing, lake, models) are writable by all roles.
RUN useradd --create-home --uid 10001 --user-group salespulse \
    && mkdir -p /data/files /data/lake /data/models /data/auth /app/data \
    && chown -R salespulse:salespulse /data /app

WORKDIR /app
COPY --chown=salespulse:salespulse pyproject.toml README.md ./
COPY --chown=salespulse:salespulse salespulse/ salespulse/
COPY --chown=salespulse:salespulse spark_jobs/ spark_jobs/
COPY --chown=salespulse:salespulse model/ model/
COPY --chown=salespulse:salespulse dashboard/ dashboard/
COPY --chown=salespulse:salespulse conf/ conf/
COPY --chown=salespulse:salespulse docker/ docker/
# Editable: settings and source profiles are read from conf/ beside the packages (salespulse.settings.PROJECT_ROOT),
# and spark-submit runs spark_jobs/*.py from this folder.
RUN pip install --no-cache-dir -e .

# Spark's Python workers must run this interpreter, with SalesPulse installed, on every node (workers otherwise start `python3` from PATH); the pip
# wheel of pyspark is the Spark installation (bin/spark-class, bin/spark-submit).
ENV PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    PYTHONUNBUFFERED=1
ENV PATH=$SPARK_HOME/bin:$PATH

USER salespulse
CMD ["salespulse", "--help"]
