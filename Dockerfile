# actorserve in a container: the README's install, then `actorserve serve` as PID 1.
#   docker build -t actorserve .
#   docker run --rm -p 1500:1500 -p 5500:5500 --stop-timeout 40 actorserve
# (docker stop waits 10 s before SIGKILL unless told otherwise; the drain takes up to 30 s)
# docs/deployment.md explains each step and how to serve your own servables.
FROM node:20-bookworm

# cmake and g++ build the native addon during `npm install`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
# The README's two commands. `npm install` builds the native addon and compiles the
# TypeScript; `npm start -- --check` generates the example models and loads and checks every
# servable once, then exits without binding a port (a servable that cannot load fails the build).
RUN npm install \
 && npm start -- --check

# The image's unprivileged user; the app stays read-only to it.
USER node
EXPOSE 1500 5500
# node is PID 1, so SIGTERM (docker stop, Kubernetes) reaches actorserve and starts its drain.
# `npm start` here would not pass it on: npm and its shell exit and node never drains.
CMD ["node", "bin/actorserve.js", "serve", "--rest-address", "0.0.0.0:1500", "--grpc-address", "0.0.0.0:5500", "--drain-timeout-ms", "30000"]
