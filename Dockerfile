# digitpad: the web app and API with the shipped model, served by gunicorn on port 8000.
#   docker build -t digitpad .
#   docker run --rm -p 8000:8000 digitpad
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/digitpad

# The CPU build of torch (PyPI's default build for Linux carries several GB of CUDA).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY app ./app
COPY model ./model
COPY static ./static
COPY templates ./templates
COPY gunicorn.conf.py ./
# g++ only while pip compiles the PNG decoder (pywuffs ships as source), then gone again.
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && pip install . \
    && apt-get purge -y --auto-remove g++ && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home digitpad \
    && mkdir instance && chown digitpad instance

USER digitpad
# Corrections go to an SQLite file in the instance folder unless DIGITPAD_DATABASE_URL says otherwise;
# mount a volume here to keep them across containers.
VOLUME /srv/digitpad/instance
ENV DIGITPAD_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "app:create_app()"]
