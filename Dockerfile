# One image for the API and the worker (docker-compose.yml runs it twice with different commands).
FROM golang:1.26-bookworm AS restic
# restic 0.18 tells a missing repository, a locked one and a wrong password apart (exit 10/11/12).
RUN go install github.com/restic/restic/cmd/restic@v0.18.1

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client rsync rclone ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=restic /go/bin/restic /usr/local/bin/restic
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
ENV NODE_ENV=production \
    RESTIC_BINARY=/usr/local/bin/restic \
    API_HOST=0.0.0.0 \
    API_PORT=8080
EXPOSE 8080
# Node with tsx's loader as PID 1: SIGTERM reaches the process itself, which drains before it exits.
CMD ["node", "--import", "tsx", "api/server.ts"]
