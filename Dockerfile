FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY project project
COPY chat chat
COPY bots bots
RUN pip install --no-cache-dir .
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ENV DJANGO_SETTINGS_MODULE=project.settings
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "project.asgi:application"]
