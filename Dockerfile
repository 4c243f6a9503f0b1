# syntax=docker/dockerfile:1
#
# Navigator as an image to copy from: Node 20 and the navigator command, nothing
# else (no shell, no npm, no node_modules). Build it at the repository root:
#
#   docker build -t navigator .
#
# then take Navigator into your app's image (Debian- or Ubuntu-based: the Node
# binary needs glibc) with one line:
#
#   COPY --from=navigator /usr/local/ /usr/local/
#
# which adds /usr/local/bin/node, /usr/local/bin/navigator and
# /usr/local/lib/navigator/, and run it with CMD ["navigator", "config/navigator.yml"].
# Or copy the two files and call the bundle with node:
#
#   COPY --from=navigator /usr/local/bin/node /usr/local/bin/node
#   COPY --from=navigator /usr/local/lib/navigator/ /usr/local/lib/navigator/
#   CMD ["node", "/usr/local/lib/navigator/navigator.mjs", "config/navigator.yml"]
#
# `--from=navigator` names the local tag; a remote builder (fly deploy's, for
# one) cannot see it: push the image to a registry it can pull from and name
# that reference instead, or build Navigator in a stage of your own Dockerfile
# as examples/rails/Dockerfile does.
#
# The packages are not on the npm registry: Navigator is built here from this
# repository (.dockerignore keeps out what this computer installed or built).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
# The lockfile pins every dependency; `release` builds the packages and bundles
# the navigator command into release/navigator.mjs (scripts/release.mjs).
RUN npx -y pnpm@10.34.9 install --frozen-lockfile \
 && npx pnpm@10.34.9 release
# The final image's /usr/local, laid out here because scratch has no shell to
# run ln in. The bundle's licence notices (navigator.mjs.LEGAL.txt) go with it.
# The symlink keeps the .mjs name of the real file, which is what makes Node load
# it as an ES module; the bundle starts with #!/usr/bin/env node.
RUN mkdir -p image/bin image/lib/navigator \
 && cp release/navigator.mjs release/navigator.mjs.LEGAL.txt image/lib/navigator/ \
 && ln -s ../lib/navigator/navigator.mjs image/bin/navigator

FROM scratch
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/image/ /usr/local/
